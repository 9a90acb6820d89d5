"""The diagnostics-based reproductions (claims 4, 6, 7) run end to end at the tiny size.

Each test runs one claim into ``tmp_path`` and checks that REPORT.md (claim, setup, results,
verdict), its PNG figures, summary.json and meta.json exist with the key fields. The numbers
of a tiny run mean nothing; the theory helpers the reports compare against are checked
separately, against closed forms.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bench import reproduce
from bench.reproduce import dead_relu, glorot_bengio, selu_fixed_point
from tests.bench.test_reproduce_training import check_protocol


def _check(tmp_path: Path, name: str, keys: tuple[str, ...]) -> dict:
    s = reproduce.run(name, out=tmp_path, tiny=True)
    d = tmp_path / "reproductions" / name
    report = (d / "REPORT.md").read_text()
    for section in ("## Claim", "## Setup", "## Results", "## Verdict"):
        assert section in report, section
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", report)
    assert figures, "the report embeds no figure"
    for f in figures:
        png = (d / f).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n", f
    summary = json.loads((d / "summary.json").read_text())
    meta = json.loads((d / "meta.json").read_text())
    assert summary["claim"] == name and summary["size"] == "tiny" and summary["verdict"]
    assert meta["size"] == "tiny" and meta["command"].endswith("--tiny")
    for k in keys:
        assert k in summary, k
    assert s["verdict"] == summary["verdict"]
    assert summary["status"] in ("held", "not held", "inconclusive")
    return summary


def test_selu_fixed_point_tiny(tmp_path):
    s = _check(
        tmp_path,
        "selu-fixed-point",
        ("conditions", "fixed_points", "tolerance", "width_scan", "iid", "training", "protocol"),
    )
    d = tmp_path / "reproductions" / "selu-fixed-point"
    for f in ("trajectories.png", "distance.png", "width.png", "training.png"):
        assert (d / f).is_file(), f
    report = (d / "REPORT.md").read_text()
    first = report.split("## Results\n\n", 1)[1].split("\n\n", 1)[0]
    assert first.startswith(("**Yes.**", "**Not from everywhere.**")), first[:80]
    assert s["protocol"]["statistical_unit"] == "seed"
    sp = selu_fixed_point.spec("tiny")
    assert len(s["conditions"]) == len(selu_fixed_point.conditions(sp))
    for c in s["conditions"]:
        assert len(c["pred_nu"]) == sp["depth"] + 1 == len(c["meas_nu_mean"])
        assert len(c["layers_to_tol_meas"]) == sp["seeds"]
    fp = s["fixed_points"]["omega=0,tau=1"]
    assert fp["mu"] == pytest.approx(0.0, abs=1e-9) and fp["nu"] == pytest.approx(1.0, abs=1e-9)
    assert [r["width"] for r in s["width_scan"]["rows"]] == sp["scan_widths"]
    assert s["tolerance"]["value"] > 0
    assert s["training"] and s["training"][0]["activation"] == "selu"


def test_glorot_bengio_tiny(tmp_path):
    s = _check(tmp_path, "glorot-bengio", ("part_a", "part_b", "protocol"))
    check_protocol(s["protocol"]["part_b"], tmp_path / "reproductions" / "glorot-bengio")
    for version in (s["part_a"], s["part_a"]["standardised"]):
        cells = version["cells"]
        assert {"tanh/standard", "tanh/xavier_uniform"} <= set(cells)
        for c in cells.values():
            assert len(c["grad_rel_median"]) == 5 and c["grad_rel_median"][-1] == pytest.approx(1.0)
    assert s["part_a"]["n_in"] == 784  # Fashion-MNIST: the paper's input size
    b = s["part_b"]["sigmoid"]
    # one escape record per measured seed: censored runs are kept, never dropped
    assert len(b["top_escape_step"]) == len(b["top_dropped_step"]) == b["n"] == 2
    assert b["escape"]["n"] == b["n_dropped"]


def test_dead_relu_tiny(tmp_path):
    s = _check(tmp_path, "dead-relu", ("arms", "dead_level", "onset_p", "protocol", "answer"))
    report = (tmp_path / "reproductions" / "dead-relu" / "REPORT.md").read_text()
    assert report.index("## Answer") < report.index("## Claim")
    seeds = s["protocol"]["measurement_seeds"]
    assert {(a["model"], a["init"]) for a in s["arms"]} == {
        ("cnn", "lecun_normal"),
        ("mlp", "lecun_normal"),
        ("mlp", "gaussian"),
    }
    n = 0
    for a in s["arms"]:
        for v in a["by_bias"].values():
            for c in v["cells"]:
                # every seed counted once, failures included (none dropped)
                assert c["seeds"] == seeds and c["died"]["n"] == c["diverged"]["n"] == len(seeds)
                assert c["died"]["k"] + c["diverged"]["k"] <= len(seeds)
                n += c["n"]
                if c["diverged"]["k"] < len(seeds):  # one entry per hidden layer
                    sp = dead_relu.spec("tiny", a["model"])
                    layers = len(sp["channels"]) if a["model"] == "cnn" else sp["depth"]
                    assert len(c["dead_per_layer"]) == layers
                for d in c["dead_per_layer"]:
                    assert d["n"] == len(seeds) - c["diverged"]["k"]
                    assert d["median"] is None or 0.0 <= d["median"] <= 1.0
        # The seed is the unit: a paired onset shift has one value per seed.
        for sh in a["shifts"].values():
            assert sh["n_seeds"] == len(seeds) == len(sh["per_seed"])
    assert n == s["n_runs"]
    # Dead units and training error were counted on the whole training subset.
    for model in ("cnn", "mlp"):
        (records,) = (tmp_path / "reproductions" / "dead-relu" / "runs").glob(
            f"dead-relu-{model}/*/records.jsonl"
        )
        r = json.loads(records.read_text().splitlines()[0])
        cfg = json.loads((records.parent / "config.json").read_text())
        assert r["eval_size"] == cfg["diag_size"] == cfg["data"]["limit_train"]


# Claim 8 (saturation) runs end to end in tests/bench/test_claim_saturation.py.


# --------------------------------------------------------------------------- theory helpers


def test_glorot_bengio_sigmas_and_linear_regime():
    assert glorot_bengio.sigma_sq("standard", 1000, 1000) == pytest.approx(1 / 3)
    assert glorot_bengio.sigma_sq("xavier_uniform", 1000, 1000) == pytest.approx(1.0)
    assert glorot_bengio.sigma_sq("xavier_uniform", 40, 1000) == pytest.approx(80 / 1040)
    # Tiny inputs keep tanh in its linear regime: attenuation -> sigma_w^2 = 1/3 per layer.
    p = glorot_bengio.predict("tanh", "standard", depth=5, width=1000, n_in=40, x_sq=1e-8)
    np.testing.assert_allclose(p["attenuation"], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(p["grad_rel"], (1 / 3) ** np.arange(4, -1, -1), rtol=1e-5)

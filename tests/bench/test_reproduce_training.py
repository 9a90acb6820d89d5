"""The training claims of ``python -m bench reproduce`` run end to end at the tiny size.

Each test runs one claim (a couple of SGD steps, a one-value lr grid tuned on one seed and
measured on two more, through ``bench.protocol``) into a temporary directory and checks that
REPORT.md, summary.json, meta.json and the figures exist and hold the fields a reader needs,
and that the summary's ``protocol`` object matches the runs: tuning and measurement seeds
disjoint, one lr bracket per setting, every measurement run counted. It proves the commands
run and write what they promise, not that the claims hold: the tiny settings are far too
small for that (the verdicts are tested in test_verdicts.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import reproduce

# claim -> (figures, summary keys beyond the common ones)
CLAIMS = {
    "relu-vs-tanh": (
        ["ratio_vs_target.png", "conditions.png", "curves.png"],
        [
            "ratio_tanh_over_relu",
            "published_ratio",
            "activations",
            "conditions",
            "factor_effects",
            "dataset",
            "diagnostics",
        ],
    ),
    "he-30-layer": (
        ["curves.png", "lr_search.png", "gradient_at_init.png"],
        ["by_depth", "stall_definition", "noise", "stall_fraction"],
    ),
    "ratio-map": (["ratio_map.png", "steps_map.png"], ["cells", "critical_sigma_w", "counts"]),
    "activation-league": (["league.png", "tuning.png"], ["ranking", "activations", "answer"]),
}

REPORT_SECTIONS = ("## Claim", "## Setup", "## Results", "## Verdict")


@pytest.mark.parametrize("name", list(CLAIMS))
def test_claim_runs_tiny(name: str, tmp_path: Path) -> None:
    figures, keys = CLAIMS[name]
    s = reproduce.run(name, out=tmp_path, tiny=True)
    out = tmp_path / "reproductions" / name
    report = (out / "REPORT.md").read_text()
    for section in REPORT_SECTIONS:
        assert section in report, section
    assert f"python -m bench reproduce {name} --tiny" in report
    assert "| " in report  # a results table
    for f in figures:
        assert (out / f).stat().st_size > 1000, f
        assert f"]({f})" in report, f
    summary = json.loads((out / "summary.json").read_text())
    assert summary["claim"] == name and summary["size"] == "tiny"
    assert summary["verdict"] and summary["verdict"] == s["verdict"]
    for k in keys:
        assert k in summary, k
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"] and "git_commit" in meta
    assert summary["status"] in ("held", "not held", "inconclusive")
    assert f"**{summary['status'].capitalize()}.**" in report
    if name == "relu-vs-tanh":  # one tuned sweep per condition
        assert [c["name"] for c in summary["conditions"]] == ["A", "B", "init", "input"]
        for c in summary["conditions"]:
            assert c["ratio_tanh_over_relu"]["paired"]
            assert c["ratio_vs_target"] and set(c["activations"]) == {"relu", "tanh"}
            check_protocol(c["protocol"], Path(summary["run_dirs"][c["name"]]))
        assert set(summary["diagnostics"]) == {"A", "B"}
    else:
        check_protocol(summary["protocol"], out)


def check_protocol(p: dict, out: Path) -> None:
    """The summary's protocol object against the protocol directory's records."""
    tune, measure = set(p["tuning_seeds"]), set(p["measurement_seeds"])
    assert tune and len(measure) >= 2 and not tune & measure
    assert p["brackets"] and all({"lr", "closed", "tried"} <= set(b) for b in p["brackets"])
    for b in p["brackets"]:
        assert b["lr"] in b["tried"]
    (records,) = [
        [json.loads(line) for line in f.read_text().splitlines()]
        for f in (out if (out / "stages").is_dir() else out / "runs").rglob("records.jsonl")
        if "stages" not in f.relative_to(out).parts
    ]
    assert {r["seed"] for r in records if r["stage"] == "tune"} <= tune
    measured = [r for r in records if r["stage"] == "measure"]
    assert {r["seed"] for r in measured} == measure
    assert p["n_measured"] == len(measured) == len(p["brackets"]) * len(measure)
    assert p["n_censored"] + p["n_failed"] <= p["n_measured"]
    assert "git_commit" in measured[0] and "steps_to_target" in measured[0]

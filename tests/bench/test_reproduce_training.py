"""The training claims of ``python -m bench reproduce`` run end to end at the tiny size.

Each test runs one claim (a couple of SGD steps, one seed, a one- or two-value grid) into a
temporary directory and checks that REPORT.md, summary.json, meta.json and the figures exist
and hold the fields a reader needs. It proves the commands run and write what they promise, not
that the claims hold: the tiny settings are far too small for that.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import reproduce

# claim -> (figures, summary keys beyond the common ones)
CLAIMS = {
    "relu-vs-tanh": (
        ["curves.png", "lr_sensitivity.png"],
        ["ratio_tanh_over_relu", "published_ratio", "activations"],
    ),
    "he-30-layer": (["curves.png"], ["by_depth", "stall_definition", "claim_30_reproduced"]),
    "ratio-map": (["ratio_map.png", "steps_map.png"], ["cells", "critical_sigma_w", "counts"]),
    "activation-league": (["league.png"], ["ranking_steps", "ranking_final_error"]),
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
    runs = list((out / "runs").rglob("records.jsonl"))
    assert len(runs) == 1
    first = json.loads(runs[0].read_text().splitlines()[0])
    assert "git_commit" in first and "steps_to_target" in first

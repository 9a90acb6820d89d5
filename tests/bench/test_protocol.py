"""The two-stage protocol: lr search that brackets the optimum, measurement on fresh seeds."""

import json
import math

import pytest
from _bench_util import TINY

from bench import config, protocol, results


def _rec(steps_to_target, *, steps=100, seed=0, diverged=False, min_err=0.2):
    reached = steps_to_target is not None
    return {
        "steps_to_target": steps_to_target,
        "reached": reached,
        "steps": steps,
        "seed": seed,
        "diverged": diverged,
        "final_train_error": 0.1 if reached else 0.5,
        "final_minibatch_loss": 0.3,
        "min_train_error": min_err,
    }


def test_where_no_lr_learns_the_search_stops_below_divergence():
    # Bug it guards: every failure scored alike, so where no lr reached the target the tie
    # went to the largest lr tried and the search climbed through diverging lrs (he-30-layer's
    # Xavier net was "tuned" to lr 370, where every run diverges).
    def stuck(diverged):
        return [
            {**_rec(None, seed=s, min_err=0.9), "final_train_error": 0.9, "diverged": diverged}
            for s in range(2)
        ]

    scores = {lr: protocol.lr_score(stuck(lr >= 10)) for lr in (0.1, 1.0, 3.0, 10.0, 30.0)}
    b = protocol.bracket(scores)
    assert b.best == 3.0 and b.closed
    assert protocol.lr_score(stuck(False)) == (math.inf, protocol.COLLAPSED_ERROR)


def test_lr_score_counts_failures_against_the_lr():
    fast_but_fragile = [
        _rec(10, seed=0),
        _rec(None, seed=1, diverged=True),
        _rec(None, seed=2, diverged=True),
    ]
    assert protocol.lr_score(fast_but_fragile)[0] == math.inf  # 2 of 3 never reach it
    steady = [_rec(40, seed=s) for s in range(3)]
    assert protocol.lr_score(steady) == (40.0, 0.2)
    # Not reached anywhere: the smaller median minimum error decides.
    assert protocol.lr_score([_rec(None, min_err=0.3)]) > protocol.lr_score(
        [_rec(None, min_err=0.25)]
    )


def test_bracket_is_closed_only_when_the_best_lr_is_interior():
    b = protocol.bracket({0.1: (50, 0.1), 0.3: (30, 0.1), 1.0: (math.inf, 0.9)})
    assert b.best == 0.3 and b.closed and b.interval == (0.1, 1.0)
    top = protocol.bracket({0.1: (50, 0.1), 0.3: (30, 0.1)})
    assert top.best == 0.3 and top.closed_below and not top.closed_above
    bottom = protocol.bracket({0.1: (20, 0.1), 0.3: (30, 0.1)})
    assert bottom.best == 0.1 and not bottom.closed_below and bottom.closed_above
    # Equal scores: the larger lr wins (documented tie rule).
    assert protocol.bracket({0.1: (30, 0.1), 0.3: (30, 0.1)}).best == 0.3


def test_next_lr_extends_towards_the_open_side_until_the_limit():
    top = protocol.bracket({0.1: (50, 0.1), 0.3: (30, 0.1)})
    assert protocol.next_lr(top, 3.0, 3.0, {}, limit=2) == ("above", 0.9)
    assert protocol.next_lr(top, 3.0, 3.0, {"above": 2}, limit=2) is None
    bottom = protocol.bracket({0.1: (20, 0.1), 0.3: (30, 0.1)})
    assert protocol.next_lr(bottom, 2.0, 3.0, {}, limit=2) == ("below", 0.05)
    closed = protocol.bracket({0.1: (50, 0.1), 0.3: (30, 0.1), 1.0: (40, 0.1)})
    assert protocol.next_lr(closed, 3.0, 3.0, {}, limit=2) is None


def test_grid_factors_follow_the_grid_or_the_setting():
    assert protocol.grid_factors([0.1, 0.2, 0.4, 1.2], 0) == pytest.approx((2.0, 3.0))
    assert protocol.grid_factors([0.5], 0) == (2.0, 2.0)
    assert protocol.grid_factors([0.1, 0.2], math.sqrt(10)) == (math.sqrt(10), math.sqrt(10))


def test_search_closes_the_bracket_on_a_known_optimum():
    # Steps to target as a function of lr with its optimum at 0.8; the grid starts far below.
    def score(lr):
        return (100 * (math.log(lr / 0.8) ** 2 + 1), 0.1)

    scores = {lr: score(lr) for lr in (0.0125, 0.025, 0.05)}
    used: dict[str, int] = {}
    while (
        step := protocol.next_lr(protocol.bracket(scores), 2.0, 2.0, used, limit=10)
    ) is not None:
        side, lr = step
        used[side] = used.get(side, 0) + 1
        scores[lr] = score(lr)
    b = protocol.bracket(scores)
    assert b.closed and b.best == 0.8 and b.interval == (0.4, 1.6)


def test_tuned_sweep_extends_the_grid_and_measures_on_fresh_seeds(tmp_path):
    # A grid far below the optimum: the search must extend upwards, then stop at its limit
    # and flag the bracket, and measure the chosen lr on the measurement seeds only.
    spec = {
        **TINY,
        "steps": 40,
        "target": 0.45,
        "protocol": "tuned",
        "lr": [0.005, 0.01],
        "lr_extensions": 2,
        "tuning_seeds": [100, 101],
        "seed": [0, 1, 2],
        "early_exit": 1,
        "activation": ["tanh", "relu"],
    }
    cfg = config.parse(spec)
    root = protocol.run_protocol(cfg, tmp_path, progress=False, report=False)
    recs = results.read_records(root)
    s = json.loads((root / "summary.json").read_text())

    tune = [r for r in recs if r["stage"] == "tune"]
    measure = [r for r in recs if r["stage"] == "measure"]
    assert {r["seed"] for r in tune} == {100, 101}
    assert {r["seed"] for r in measure} == {0, 1, 2}
    for row in s["settings"]:
        tried = [g["lr"] for g in row["tuning"]]
        assert tried == [0.005, 0.01, 0.02, 0.04]  # two extensions upwards, factor 2
        assert not row["bracket"]["closed"] and row["bracket"]["open_side"] == ["above"]
        assert row["lr"] == 0.04 and row["n"] == 3
        lr_measured = {r["lr"] for r in measure if r["activation"] == row["activation"]}
        assert lr_measured == {row["lr"]}
    p = s["protocol"]
    assert p["tuning_seeds"] == [100, 101] and p["measurement_seeds"] == [0, 1, 2]
    assert p["brackets_closed"] == 0 and len(p["brackets_open"]) == 2
    assert p["n_measured"] == 6
    (ratio,) = s["ratios"]
    assert ratio["paired"] and ratio["numerator"].startswith("relu")
    assert "OPEN above" in (root / "summary.md").read_text()

"""The activation league's pieces: the lr chosen on validation error (bracketed, extended on an
edge), the paired test-error differences and their CIs, the rank ranges, and the analysis from
records to summary. Expected numbers come from numpy/scipy or are worked out by hand; the
verdict is tested in test_verdicts.py and the end-to-end tiny run in test_reproduce_training.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from bench import config
from bench.reproduce import activation_league as al

SP = {**al.spec("default"), "lr": [0.01, 0.02, 0.04, 0.08], "lr_extensions": 3}


def _run(lr, seed, val, train=0.1, test=None, diverged=False, stage="tune", act="relu", **kw):
    return {
        "stage": stage,
        "activation": act,
        "lr": lr,
        "seed": seed,
        "val_error": None if diverged else val,
        "test_error": None if diverged else (val if test is None else test),
        "final_train_error": None if diverged else train,
        "final_minibatch_loss": None if diverged else 0.3,
        "diverged": diverged,
        "steps": 400,
        "steps_to_target": None if diverged else 100,
        "reached": not diverged,
        **kw,
    }


# --------------------------------------------------------------------------- lr choice


def test_lr_is_chosen_by_median_validation_error_not_training_error():
    # 0.02 has the lowest validation error but the highest training error (it overfits less);
    # 0.04 is best on training error. One of 0.08's two seeds diverged: +inf, never chosen.
    recs = [
        _run(0.01, 1000, 0.20, train=0.15),
        _run(0.01, 1001, 0.22, train=0.15),
        _run(0.02, 1000, 0.15, train=0.20),
        _run(0.02, 1001, 0.17, train=0.20),
        _run(0.04, 1000, 0.18, train=0.05),
        _run(0.04, 1001, 0.19, train=0.05),
        _run(0.08, 1000, 0.01, train=0.01),
        _run(0.08, 1001, None, diverged=True),
    ]
    assert al.val_score(recs[2:4]) == (pytest.approx(0.16), pytest.approx(0.20))
    assert al.val_score(recs[6:]) == (math.inf, math.inf)
    b, nxt = al.choose(recs, SP)
    assert b.best == 0.02 and b.closed and nxt is None


def test_an_edge_optimum_extends_the_grid_until_bracketed_or_flagged_open():
    recs = [_run(lr, s, 0.3 - lr) for lr in SP["lr"] for s in (1000, 1001)]  # best: largest
    b, nxt = al.choose(recs, SP)
    assert b.best == 0.08 and not b.closed_above and nxt == ("above", 0.16)  # grid spacing 2
    recs += [_run(lr, s, 0.3 - lr) for lr in (0.16, 0.32, 0.64) for s in (1000, 1001)]
    b, nxt = al.choose(recs, SP)
    assert b.best == 0.64 and nxt is None  # 3 extensions used: stop, flagged open
    assert not b.closed and b.lrs[-1] == 0.64


def test_search_tunes_on_tuning_seeds_then_measures_the_chosen_lr_on_fresh_seeds():
    # Validation error of silu is a parabola in log lr with its minimum at 0.3: the search must
    # walk up from the grid (0.16, 0.32, then 0.64 to close the bracket) and measure at 0.32.
    best = {"relu": 0.02, "silu": 0.3}
    calls = []

    def sweep(sp, stage):
        calls.append((stage, tuple(sp["activation"]), tuple(sp["lr"]), tuple(sp["seed"])))
        config.parse(sp)  # every stage is a valid plain sweep
        return [
            _run(lr, s, 0.1 + math.log(lr / best[a]) ** 2, stage=stage, act=a)
            for a in sp["activation"]
            for lr in sp["lr"]
            for s in sp["seed"]
        ]

    sp = {**SP, "activation": ["relu", "silu"]}
    records = al.search(sp, sweep)
    assert calls[0] == ("tune", ("relu", "silu"), tuple(SP["lr"]), (1000, 1001))
    assert [c[2] for c in calls if c[0] == "tune"][1:] == [(0.16,), (0.32,), (0.64,)]
    measured = {(c[1], c[2]) for c in calls if c[0] == "measure"}
    assert measured == {(("relu",), (0.02,)), (("silu",), (0.32,))}
    assert all(c[3] == tuple(range(8)) for c in calls if c[0] == "measure")
    s = al.analyse(records, sp)
    b = {x["setting"]: x for x in s["protocol"]["brackets"]}
    assert b["silu"]["lr"] == 0.32 and b["silu"]["closed"]
    assert b["silu"]["tried"] == [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64]


def test_analysis_refuses_records_measured_at_another_lr():
    recs = [_run(lr, s, 0.1 + abs(lr - 0.02)) for lr in SP["lr"] for s in (1000, 1001)]
    recs += [_run(0.04, s, 0.1, stage="measure") for s in range(8)]
    with pytest.raises(ValueError, match="lr"):
        al.analyse(recs, {**SP, "activation": ["relu"]})


# --------------------------------------------------------------------------- statistics


def test_expanded_level_matches_the_t_quantile():
    # n = 8: sqrt(8/7) t_{0.975, 7} = 2.5279, 2 Phi(2.5279) - 1 = 0.98853 (by hand from tables)
    assert al.expanded_level(8) == pytest.approx(0.98853, abs=2e-5)
    assert al.expanded_level(10_000) == pytest.approx(0.95, abs=1e-4)


def test_paired_ci_is_the_t_interval_of_the_differences_and_pairs_by_seed():
    rng = np.random.default_rng(3)
    seed_effect = rng.normal(0, 1.0, 8)  # shared by both sides: must cancel
    # symmetric differences: the bootstrap then has no skewness to follow, and matches t
    d = 0.01 + 0.004 * np.array([-1.6, -0.9, -0.5, -0.1, 0.1, 0.5, 0.9, 1.6])
    b = {s: 0.2 + 0.05 * seed_effect[s] for s in range(8)}
    a = {s: b[s] + d[s] for s in reversed(range(8))}  # another order: paired by seed, not position
    out = al.paired_diff(a, b, n_boot=40_000)
    assert out["n"] == 8 and out["mean"] == pytest.approx(d.mean(), abs=1e-12)
    lo, hi = sps.t.interval(0.95, 7, loc=d.mean(), scale=d.std(ddof=1) / math.sqrt(8))
    half = (hi - lo) / 2
    assert out["ci"][0] == pytest.approx(lo, abs=0.06 * half)
    assert out["ci"][1] == pytest.approx(hi, abs=0.06 * half)


def test_paired_diff_uses_the_shared_seeds_only():
    out = al.paired_diff({0: 0.3, 1: 0.5, 2: 0.9}, {1: 0.1, 2: 0.2, 3: 0.0})
    assert out["n"] == 2 and out["mean"] == pytest.approx((0.4 + 0.7) / 2)
    assert al.paired_diff({0: 0.3}, {1: 0.1}) is None


def test_rank_ranges_tie_activations_whose_paired_ci_contains_zero():
    means = {"a": 0.10, "b": 0.12, "c": 0.13}
    ci = {("a", "b"): [-0.03, -0.01], ("a", "c"): [-0.04, -0.02], ("b", "c"): [-0.02, 0.01]}
    diffs = {k: {"ci": v} for k, v in ci.items()}
    diffs |= {(y, x): {"ci": [-v[1], -v[0]]} for (x, y), v in ci.items()}
    r = al.rank_ranges(means, diffs)
    assert [(r[x]["best"], r[x]["worst"]) for x in "abc"] == [(1, 1), (2, 3), (2, 3)]
    assert [r[x]["rank"] for x in "abc"] == [1, 2, 3]
    assert al.fmt_rank(r["b"]) == "2-3" and al.fmt_rank(r["a"]) == "1"


def _league_records(test_by_act, diverged=()):
    recs = []
    for a, errs in test_by_act.items():
        recs += [_run(lr, s, 0.1 + abs(lr - 0.02), act=a) for lr in SP["lr"] for s in (1000, 1001)]
        recs += [
            _run(0.02, s, e, test=e, stage="measure", act=a, diverged=(a, s) in diverged)
            for s, e in enumerate(errs)
        ]
    return recs


def test_analysis_counts_a_diverged_run_at_chance_and_pairs_by_seed():
    rng = np.random.default_rng(0)
    relu = rng.uniform(0.15, 0.2, 8)
    silu = relu - 0.01
    recs = _league_records({"relu": relu, "silu": silu}, diverged={("silu", 3)})
    s = al.analyse(recs, {**SP, "activation": ["relu", "silu"]})
    x = s["activations"]["silu"]
    want = silu.copy()
    want[3] = 0.9  # chance, never dropped
    assert x["failed"] == 1 and x["test_error"] == pytest.approx(list(want))
    assert x["test_error_mean"] == pytest.approx(want.mean())
    assert x["vs_relu"]["mean"] == pytest.approx((want - relu).mean())
    assert x["vs_relu"]["n"] == 8 and x["lr"] == 0.02
    assert x["test_error_median"] == pytest.approx(np.median(want))
    assert s["protocol"]["n_measured"] == 16 and s["protocol"]["n_failed"] == 1
    assert s["activations"]["relu"]["vs_relu"] is None


def test_a_run_collapsed_to_chance_is_a_failure_and_keeps_its_error():
    recs = _league_records({"relu": [0.2] * 8, "silu": [0.2] * 7 + [0.88]})
    (last,) = [r for r in recs if r["activation"] == "silu" and r["seed"] == 7]
    last.update(final_train_error=0.9, reached=False, steps_to_target=None)
    x = al.analyse(recs, {**SP, "activation": ["relu", "silu"]})["activations"]["silu"]
    assert x["failed"] == 1 and x["diverged"] == 0 and x["test_error"][-1] == 0.88
    assert x["vs_relu"]["mean"] == pytest.approx(0.68 / 8)


def test_every_size_parses_before_anything_runs_and_keeps_seeds_disjoint():
    import activations

    for size in ("tiny", "default", "full"):
        sp = al.spec(size)
        assert not set(sp["tuning_seeds"]) & set(sp["seed"])
        assert all(activations.info(a).name == a for a in sp["activation"])
        for stage in ("tune", "measure"):
            cfg = config.parse(al.stage_spec(sp, stage, sp["activation"], sp["lr"], sp["seed"]))
            assert cfg.val_size > 0 and cfg.protocol == "grid"
            limit = cfg.data.get("limit_test")
            assert limit == al.TUNE_TEST if stage == "tune" else size != "default" or limit is None
    bad = {**al.stage_spec(al.spec("tiny"), "tune", ["relu"], [0.1], [0]), "val_size": -1}
    with pytest.raises(ValueError, match="val_size"):
        config.parse(bad)


def test_answer_reads_each_side_from_the_paired_cis():
    def row(vs_relu, swish_minus, mean):
        return {"vs_relu": vs_relu, "swish_minus": swish_minus, "test_error_mean": mean}

    d = {"mean": -0.009, "ci": [-0.023, 0.001], "n": 8}
    rows = {
        "relu": row(None, d, 0.18),
        "silu": row(d, None, 0.17),
        "elu": row(
            {"mean": -0.02, "ci": [-0.03, -0.01]}, {"mean": 0.01, "ci": [0.004, 0.01]}, 0.16
        ),
        "softplus": row(
            {"mean": 0.02, "ci": [0.01, 0.03]}, {"mean": -0.02, "ci": [-0.03, -0.01]}, 0.2
        ),
    }
    s = {"activations": rows, "steps": 300, "ranking": [{"activation": "elu", **rows["elu"]}]}
    text = al.answer(s, "inconclusive")
    assert "-0.90 pp [-2.30, +0.10] (95% CI): lower than relu's, the published direction" in text
    assert "but the CI reaches +0.10 pp" in text
    assert "surely better than softplus and surely worse than elu" in text
    assert "surely below relu's: elu; surely above: softplus" in text
    assert "span 4.00 percentage points" in text


def test_paired_ci_covers_the_true_mean_at_8_seeds():
    # Coverage by simulation: 8 paired seeds with normal differences of mean 0. The expanded
    # percentile interval should cover ~95%; the plain one covers ~91% at n = 8 (the bug this
    # guards: dropping the expansion).
    rng = np.random.default_rng(123)
    n_sim, hits = 800, 0
    for i in range(n_sim):
        d = rng.normal(0.0, 1.0, 8)
        ci = al.paired_diff(dict(enumerate(d)), dict.fromkeys(range(8), 0.0), 1000, seed=i)
        hits += ci["ci"][0] <= 0.0 <= ci["ci"][1]
    assert 0.93 <= hits / n_sim <= 0.97

"""he-30-layer's analysis pieces against independent computations.

The noise line is checked against the binomial formula written out here; onset and stall
against hand-made curves; the lr search summary (learned / diverged per lr, whether the search
reached divergence) against hand-made tuning records; the gradient statistic against numpy; and
the gradient at init of real ReLU nets against He et al.'s (sigma_w^2 / 2)^(L - 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.reproduce import he_30_layer as he


def test_noise_line_is_chance_minus_z_binomial_se():
    labels = [0] * 30 + [1] * 50 + [2] * 20  # best constant guess: class 1, error 0.5
    n = he.noise_line(labels, z=2.0)
    se = math.sqrt(0.5 * 0.5 / 100)
    assert n["chance"] == pytest.approx(0.5)
    assert n["se"] == pytest.approx(se)
    assert n["line"] == pytest.approx(0.5 - 2 * se)  # below chance, never above
    assert n["n"] == 100


def test_onset_is_the_first_evaluation_at_or_below_the_line():
    steps = [0, 25, 50, 75, 100]
    assert he.onset_step(steps, [0.9, 0.86, 0.8, 0.7, 0.9], 0.8) == 50  # at the line counts
    assert he.onset_step(steps, [0.9, 0.9, 0.9, 0.9, 0.9], 0.8) is None
    # a diverged run reads NaN: never an onset
    assert he.onset_step(steps, [0.9, math.nan, math.nan, math.nan, math.nan], 0.8) is None


def test_stall_window():
    assert he.stalled(None, 1000)  # no onset at all
    assert not he.stalled(500, 1000, 0.5)  # onset at the window's end: not stalled
    assert he.stalled(525, 1000, 0.5)
    assert not he.stalled(25, 1000, 0.5)


def _rec(stage, depth, init, lr, seed, *, min_err=0.88, diverged=False, stt=None, onset=None):
    return {
        "stage": stage,
        "depth": depth,
        "init": init,
        "lr": lr,
        "seed": seed,
        "diverged": diverged,
        "min_train_error": None if diverged else min_err,
        "final_train_error": None if diverged else min_err,
        "steps_to_target": stt,
        "reached": stt is not None,
        "steps": 1000,
        "onset": onset,
    }


def _protocol(rows):
    return {
        "protocol": {
            "tuning_seeds": [1000, 1001],
            "measurement_seeds": [0, 1, 2],
            "lr_grid": [0.1, 1.0],
            "lr_extensions": 1,
            "estimator": "KM",
            "ci_method": "percentile",
            "n_measured": 12,
            "n_censored": 0,
            "n_failed": 0,
        },
        "settings": [
            {
                "depth": d,
                "init": i,
                "lr": lr,
                "label": f"{d} {i}",
                "bracket": {"below": None, "above": None, "closed": True, "open_side": []},
                "tuning": [],
            }
            for d, i, lr in rows
        ],
    }


def test_analyse_counts_stalls_and_the_lr_search():
    recs = []
    # Xavier: stalls at 0.1 and 1, diverges at 10 on both tuning seeds
    for seed in (1000, 1001):
        recs += [
            _rec("tune", 30, "xavier_normal", 0.1, seed),
            _rec("tune", 30, "xavier_normal", 1.0, seed),
            _rec("tune", 30, "xavier_normal", 10.0, seed, diverged=True),
            _rec("tune", 30, "he_normal", 0.1, seed, min_err=0.3, stt=200),
            _rec("tune", 30, "he_normal", 1.0, seed, diverged=seed == 1000),
        ]
    # measured: Xavier no onset (2 seeds) and a late onset (seed 2); He early onsets
    recs += [
        _rec("measure", 30, "xavier_normal", 1.0, 0),
        _rec("measure", 30, "xavier_normal", 1.0, 1),
        _rec("measure", 30, "xavier_normal", 1.0, 2, onset=900, min_err=0.7),
        _rec("measure", 30, "he_normal", 0.1, 0, onset=50, stt=200, min_err=0.3),
        _rec("measure", 30, "he_normal", 0.1, 1, onset=75, stt=250, min_err=0.3),
        _rec("measure", 30, "he_normal", 0.1, 2, onset=600, stt=700, min_err=0.3),
    ]
    sp = {"depth": [30], "steps": 1000, "target": 0.6}
    noise = {"chance": 0.88, "se": 0.0145, "z": 3.0, "n": 500, "line": 0.8365}
    p = _protocol([(30, "xavier_normal", 1.0), (30, "he_normal", 0.1)])
    s = he.analyse(recs, p, sp, noise)
    x, h = s["by_depth"]["30"]["xavier_normal"], s["by_depth"]["30"]["he_normal"]
    assert x["stalled"] == 3 and x["n"] == 3  # onset 900 is after the 500-step window
    assert h["stalled"] == 1  # onset 600 > 500
    assert x["onset_per_seed"] == [None, None, 900]
    assert [v["lr"] for v in x["lr_search"]] == [0.1, 1.0, 10.0]
    assert [v["diverged"] for v in x["lr_search"]] == [0, 0, 2]
    assert [v["learned"] for v in x["lr_search"]] == [0, 0, 0]
    assert x["largest_lr_diverged"] and x["learned_below_divergence"] == []
    assert x["first_diverging_lr"] == 10.0
    # He at lr 1: one of two tuning runs diverged -> the search's top is not "diverged"
    assert not h["largest_lr_diverged"]
    assert h["first_diverging_lr"] is None
    assert h["learned_below_divergence"] == [0.1]
    # the KM median onset: censored runs stay in the risk set (numpy with inf)
    assert x["onset"]["median"] is None
    assert h["onset"]["median"] == pytest.approx(np.median([50, 75, 600]))
    ci = x["stall_share_ci"]
    assert ci[0] > 0.29 and ci[1] == pytest.approx(1.0)  # Clopper-Pearson 3/3: [0.292, 1]


def test_grad_ratio_stats_is_the_seed_mean_over_theory():
    r = [1.0, 1.1, 0.9, 1.05]
    g = he.grad_ratio_stats(r, 0.25)
    assert g["over_theory"] == pytest.approx(np.mean(r) / 0.25)
    assert g["log2_theory"] == pytest.approx(-2.0)
    assert g["agrees"] == -1  # measured / theory ~ 4, CI wholly above 2
    assert he.grad_ratio_stats([0.9, 1.1, 1.0, 1.05], 1.0)["agrees"] == 1
    assert he.grad_ratio_stats([0.1, 0.12, 0.09, 0.11], 1.0)["agrees"] == -1


def test_gradient_at_init_follows_he_theory():
    """Hidden layer 1 / top hidden layer at init in the trained nets and in bench.attenuation's
    square nets: (sigma_w^2 / 2)^(L-1), i.e. 1/4 for Xavier and 1 for He at 3 layers."""
    from bench import data

    sp = {"dataset": "mnist1d", "depth": [3], "width": 256}
    ds = data.load("mnist1d")
    g = he.measure_gradients(sp, {"seeds": 8, "examples": 256}, ds)["3"]
    for init, want in (("xavier_normal", 0.25), ("he_normal", 1.0)):
        for kind in ("net", "square"):
            c = g[kind][init]
            assert c["theory"] == pytest.approx(want)
            assert c["mean"] == pytest.approx(want, rel=0.25), (kind, init, c["mean"])


def _row(depth, init, lr, tuning):
    return {
        "depth": depth,
        "init": init,
        "lr": lr,
        "tuning": [{"lr": a, "median_steps": m, "diverged": d} for a, m, d in tuning],
    }


def test_analyse_reads_the_stall_from_the_measurement_runs():
    recs = [
        _rec("tune", 30, "xavier_normal", 1.0, 1000),
        _rec("tune", 30, "xavier_normal", 10.0, 1000, diverged=True),
        # the measurement at the tuned lr 1: one run learns early, one diverges
        _rec("measure", 30, "xavier_normal", 1.0, 0, onset=100, min_err=0.7),
        _rec("measure", 30, "xavier_normal", 1.0, 1),
        _rec("measure", 30, "xavier_normal", 1.0, 2, diverged=True),
    ]
    sp = {"depth": [30], "steps": 1000, "target": 0.6}
    noise = {"chance": 0.88, "se": 0.0145, "z": 3.0, "n": 500, "line": 0.8365}
    s = he.analyse(recs, _protocol([(30, "xavier_normal", 1.0)]), sp, noise)
    x = s["by_depth"]["30"]["xavier_normal"]
    assert x["stalled"] == 2 and x["n_stall_runs"] == 3 and x["onset_per_seed"] == [100, None, None]
    # seed 1 ends at chance (collapsed), seed 2 diverged: both failures, both counted
    assert x["measured_diverged"] == 1 and x["failed"] == 2

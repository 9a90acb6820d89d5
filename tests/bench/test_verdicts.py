"""Every claim's verdict is a pure function of its summary: held, not held or inconclusive.

Each claim gets three hand-made summaries whose verdict follows from the claim's rule as its
report states it (a 95% CI wholly on the claim's side of the threshold, wholly on the other
side, or straddling it), so a verdict that is constant, or a comparison turned the wrong way,
fails here. The summaries hold only the fields the verdict reads.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from bench.reproduce import (
    _common,
    activation_league,
    dead_relu,
    glorot_bengio,
    he_30_layer,
    ratio_map,
    relu_vs_tanh,
    saturation,
    selu_fixed_point,
)

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"


def r(value, lo, hi, bound="exact", ci_bound=None, n=8):
    """A ratio as bench.stats.median_ratio returns it."""
    return {
        "ratio": value,
        "bound": bound,
        "ci": [lo, hi],
        "ci_bound": ci_bound or bound,
        "ci_method": "percentile",
        "paired": True,
        "n_num": n,
        "n_den": n,
    }


# --------------------------------------------------------------------------- shared rules


def test_side_respects_the_threshold_and_bounds():
    assert _common.side([1.2, 2.0], 1.0) == 1
    assert _common.side([0.2, 0.9], 1.0) == -1
    assert _common.side([0.9, 1.1], 1.0) == 0
    assert _common.side(None, 1.0) == 0
    # A lower bound (ends can only be too low) still shows "above", never "below".
    assert _common.side([1.2, None], 1.0, "lower") == 1
    assert _common.side([0.2, 0.9], 1.0, "lower") == 0
    assert _common.side([0.2, 0.9], 1.0, "upper") == -1
    assert _common.side([1.2, 2.0], 1.0, "upper") == 0  # an upper bound may truly be below
    assert _common.side([1.2, 2.0], 1.0, "undetermined") == 0


def test_combine_needs_every_part():
    assert _common.combine([HELD, HELD]) == HELD
    assert _common.combine([HELD, INCONCLUSIVE]) == INCONCLUSIVE
    assert _common.combine([INCONCLUSIVE, NOT_HELD, HELD]) == NOT_HELD
    assert _common.combine([]) == INCONCLUSIVE


# --------------------------------------------------------------------------- claim 1


def _relu_vs_tanh(lo, hi, value):
    return {"ratio_tanh_over_relu": r(value, lo, hi), "published_ratio": 6.0}


@pytest.mark.parametrize(
    "s, want",
    [
        (_relu_vs_tanh(1.2, 1.7, 1.4), HELD),  # tanh slower: ReLU faster
        (_relu_vs_tanh(0.5, 0.8, 0.6), NOT_HELD),
        (_relu_vs_tanh(0.8, 1.6, 1.1), INCONCLUSIVE),
    ],
)
def test_relu_vs_tanh(s, want):
    st, text = relu_vs_tanh.verdict(s)
    assert st == want
    assert "published 6" in text


def test_relu_vs_tanh_censored_tanh_is_a_lower_bound():
    s = {"ratio_tanh_over_relu": r(3.0, 2.0, None, "lower"), "published_ratio": 6.0}
    assert relu_vs_tanh.verdict(s)[0] == HELD


# --------------------------------------------------------------------------- claim 2


def _cell(depth, w, ratio_):
    return {"depth": depth, "sigma_w": w, "ratio": ratio_}


RELU_WINS, TANH_WINS, UNCLEAR = r(2.0, 1.5, 3.0), r(0.5, 0.3, 0.7), r(1.1, 0.7, 1.6)


@pytest.mark.parametrize(
    "cells, want",
    [
        ([_cell(2, 0.5, RELU_WINS), _cell(16, 2.0, TANH_WINS), _cell(4, 1.0, UNCLEAR)], HELD),
        ([_cell(2, 0.5, RELU_WINS), _cell(16, 2.0, RELU_WINS)], NOT_HELD),
        ([_cell(2, 0.5, RELU_WINS), _cell(16, 2.0, UNCLEAR)], INCONCLUSIVE),
        ([_cell(2, 0.5, TANH_WINS), _cell(16, 2.0, None)], INCONCLUSIVE),
    ],
)
def test_ratio_map(cells, want):
    st, text = ratio_map.verdict({"cells": cells})
    assert st == want
    assert f"Of {len(cells)} cells" in text


def test_ratio_map_winner_reads_the_ci_side():
    assert ratio_map.winner(RELU_WINS) == "relu"  # tanh/relu > 1: tanh took longer
    assert ratio_map.winner(TANH_WINS) == "tanh"
    assert ratio_map.winner(UNCLEAR) == "unclear"
    assert ratio_map.winner(r(None, None, None, "undetermined")) == "undetermined"


# --------------------------------------------------------------------------- claim 3


def _league(silu_vs_relu):
    rows = [
        {"activation": "relu", "vs_relu": None, "rank_steps": 2, "rank_error": 2},
        {"activation": "silu", "vs_relu": silu_vs_relu, "rank_steps": 1, "rank_error": 1},
        {"activation": "sigmoid", "vs_relu": r(3.0, 2.0, 4.0), "rank_steps": 3, "rank_error": 3},
    ]
    return {"ranking": rows}


@pytest.mark.parametrize(
    "s, want",
    [
        (_league(r(0.7, 0.5, 0.9)), HELD),  # silu needs fewer steps than relu
        (_league(r(1.4, 1.2, 1.7)), NOT_HELD),
        (_league(r(0.95, 0.8, 1.2)), INCONCLUSIVE),
    ],
)
def test_activation_league(s, want):
    st, text = activation_league.verdict(s)
    assert st == want
    assert "sigmoid" in text  # the saturating ones are described


# --------------------------------------------------------------------------- claim 4


def _glorot(std_ci=(0.005, 0.008), norm_ci=(0.6, 0.75), share_ci=(0.63, 1.0)):
    def cell(init, ci):
        return {
            "activation": "tanh",
            "init": init,
            "bottom_top_median": sum(ci) / 2,
            "bottom_top_ci95": list(ci),
            "bottom_top_theory": sum(ci) / 2,
            "weight_grad_rms_bottom_top_median": 0.9,
            "weight_grad_rms_bottom_top_ci95": [0.85, 0.95],
        }

    return {
        "part_a": {
            "cells": {
                "tanh/standard": cell("standard", std_ci),
                "tanh/xavier_uniform": cell("xavier_uniform", norm_ci),
            }
        },
        "part_b": {"sigmoid_top_to_zero": {"k": 8, "n": 8, "ci": list(share_ci)}},
    }


@pytest.mark.parametrize(
    "s, want",
    [
        (_glorot(), HELD),
        (_glorot(std_ci=(1.5, 2.5)), NOT_HELD),  # gradient grows towards the input
        (_glorot(norm_ci=(0.1, 0.2)), NOT_HELD),  # normalised init: not within a factor 2
        (_glorot(share_ci=(0.0, 0.37)), NOT_HELD),  # sigmoid's top layer stays up
        (_glorot(norm_ci=(0.4, 0.7)), INCONCLUSIVE),  # straddles 1/2
        (_glorot(std_ci=(0.5, 1.5)), INCONCLUSIVE),
        (_glorot(share_ci=(0.3, 0.9)), INCONCLUSIVE),
    ],
)
def test_glorot_bengio(s, want):
    assert glorot_bengio.verdict(s)[0] == want


# --------------------------------------------------------------------------- claim 5


def _he(x30=(0.85, 0.9), h30=(0.1, 0.3), x22=(0.1, 0.3), h22=(0.1, 0.3), r22=(1.5, 3.0)):
    def g(ci):
        return {"final_error_median": sum(ci) / 2, "final_error_ci": list(ci)}

    return {
        "stall_error": 0.8,
        "by_depth": {
            "22": {
                "xavier_normal": g(x22),
                "he_normal": g(h22),
                "ratio_xavier_over_he": r(sum(r22) / 2, *r22),
            },
            "30": {
                "xavier_normal": g(x30),
                "he_normal": g(h30),
                "ratio_xavier_over_he": r(3.0, 2.0, None, "lower"),
            },
        },
    }


@pytest.mark.parametrize(
    "s, want",
    [
        (_he(), HELD),
        (_he(x30=(0.2, 0.4)), NOT_HELD),  # Xavier trains at 30 layers
        (_he(h30=(0.85, 0.9)), NOT_HELD),  # He stalls too
        (_he(x22=(0.85, 0.9)), NOT_HELD),  # Xavier already stalls at 22
        (_he(r22=(0.4, 0.8)), NOT_HELD),  # Xavier earlier at 22
        (_he(x30=(0.7, 0.9)), INCONCLUSIVE),  # straddles the stall line
        (_he(r22=(0.8, 1.5)), INCONCLUSIVE),
    ],
)
def test_he_30_layer(s, want):
    assert he_30_layer.verdict(s)[0] == want


def test_he_30_layer_reads_depths_as_numbers():
    # "100" sorts before "22" as a string: the deep part must be the numerically largest.
    s = _he()
    s["by_depth"]["100"] = s["by_depth"].pop("30")
    st, text = he_30_layer.verdict(s)
    assert st == HELD and text.index("100 layers") < text.index("22 layers")


# --------------------------------------------------------------------------- claim 6


def _cond(tau=1.0, converged=-1, ci=(0.005, 0.012), diverged=False, start=(1.0, 3.0)):
    """One (start, omega, tau) row of the selu summary: the fields verdict reads."""
    return {
        "omega": 0.0,
        "tau": tau,
        "mu0": start[0],
        "nu0": start[1],
        "in_theorem": 0.95 <= tau <= 1.1,
        "diverged": diverged,
        "converged": converged,  # side of the late offset's CI against the tolerance
        "late_offset_mean": sum(ci) / 2 if ci else float("nan"),
        "late_offset_ci": list(ci) if ci else None,
        "layers_to_tol_meas_median": 14.0,
        "layers_to_tol_pred": 14,
    }


def _selu(conds=None, net=(-1.1, -0.9)):
    if conds is None:
        conds = [_cond(tau, start=st) for tau in (0.95, 1.0, 1.1) for st in ((0.5, 0.25), (1, 3))]
    return {
        "width": 512,
        "tolerance": {"value": 0.044},
        "conditions": conds,
        "width_scan": {
            "fit": {
                "network": {"slope": sum(net) / 2, "ci": list(net), "predicted": -1.0},
                "sampling": {"slope": -0.5, "ci": [-0.6, -0.4], "predicted": -0.5},
            }
        },
    }


def _with(**kw):
    s = _selu()
    s["conditions"][2] = _cond(**kw)
    return s


@pytest.mark.parametrize(
    "s, want",
    [
        (_selu(), HELD),
        # outside Theorem 1's range (tau 1.25) a failure does not count against the claim
        (_selu([*_selu()["conditions"], _cond(1.25, converged=1, ci=(0.1, 0.2))]), HELD),
        (_with(converged=1, ci=(0.06, 0.09)), NOT_HELD),  # settled elsewhere
        (_with(diverged=True, converged=0, ci=None), NOT_HELD),
        (_selu(net=(0.1, 0.4)), NOT_HELD),  # the deviation grows with the width
        (_with(converged=0, ci=(0.03, 0.05)), INCONCLUSIVE),  # CI straddles the tolerance
        (_selu(net=(-0.6, -0.4)), INCONCLUSIVE),  # shrinks, but not as 1/width
        (_selu(net=(-1.5, 0.2)), INCONCLUSIVE),  # not clearly shrinking
        (_selu([]), INCONCLUSIVE),
    ],
)
def test_selu_fixed_point(s, want):
    st, text = selu_fixed_point.verdict(s)
    assert st == want
    assert "Attraction" in text and "width^" in text


# --------------------------------------------------------------------------- claim 7


def _pair(lo, hi):
    return {"n_seeds": 8, "n_pairs": 48, "mean": (lo + hi) / 2, "ci95": [lo, hi]}


def _dead(lr=(0.1, 0.2), bias=(-0.05, -0.01)):
    return {
        "lr_test": {"small": 0.01, "large": 0.6, **_pair(*lr)},
        "bias_pairs": {"all": _pair(*bias)},
        "init_pairs": {"lecun_normal - he_normal": _pair(-0.01, 0.02)},
        "n_diverged": 0,
        "pre_activation_rms_at_init": 1.0,
    }


@pytest.mark.parametrize(
    "s, want",
    [
        (_dead(), HELD),  # more dead at the large lr, fewer with bias 0.01
        (_dead(bias=(0.01, 0.05)), NOT_HELD),
        (_dead(lr=(-0.2, -0.1)), NOT_HELD),
        (_dead(lr=(-0.01, 0.1)), INCONCLUSIVE),
        (_dead(bias=(-0.02, 0.01)), INCONCLUSIVE),
    ],
)
def test_dead_relu(s, want):
    assert dead_relu.verdict(s)[0] == want


# --------------------------------------------------------------------------- claim 8


def _sat(sig_tanh, tanh_relu):
    return {"ratios": {"sigmoid/tanh": sig_tanh, "tanh/relu": tanh_relu}}


@pytest.mark.parametrize(
    "s, want",
    [
        (_sat(r(2.0, 1.5, 3.0), r(1.3, 1.1, 1.6)), HELD),  # sigmoid slowest, relu fastest
        (_sat(r(0.6, 0.4, 0.8), r(1.3, 1.1, 1.6)), NOT_HELD),
        (_sat(r(2.0, 1.5, 3.0), r(0.7, 0.5, 0.9)), NOT_HELD),
        (_sat(r(2.0, 1.5, 3.0), r(1.0, 0.8, 1.2)), INCONCLUSIVE),
        (_sat(r(None, None, None, "undetermined"), r(1.3, 1.1, 1.6)), INCONCLUSIVE),
    ],
)
def test_saturation(s, want):
    assert saturation.verdict(s)[0] == want


def test_verdicts_do_not_modify_the_summary():
    s = _glorot()
    before = copy.deepcopy(s)
    glorot_bengio.verdict(s)
    assert s == before


# --------------------------------------------------------------------------- analysis -> verdict


def _protocol(settings):
    """A bench.protocol summary holding the given settings (fields + chosen lr)."""
    rows = [
        {
            **fields,
            "label": " ".join(f"{v}" for v in fields.values()),
            "lr": 0.1,
            "bracket": {"below": 0.05, "above": 0.2, "closed": True, "open_side": []},
            "tuning": [{"lr": lr} for lr in (0.05, 0.1, 0.2)],
        }
        for fields in settings
    ]
    return {
        "protocol": {
            "tuning_seeds": [1000, 1001],
            "measurement_seeds": list(range(8)),
            "lr_grid": [0.05, 0.1, 0.2],
            "lr_extensions": 2,
            "estimator": "KM",
            "ci_method": "bootstrap",
            "n_measured": 8 * len(rows),
            "n_censored": 0,
            "n_failed": 0,
        },
        "settings": rows,
    }


def _runs(steps_by_seed, budget=600, **fields):
    """Measurement records: one per seed, reaching the target at the given step (None: never,
    still learning)."""
    return [
        {
            **fields,
            "stage": "measure",
            "seed": seed,
            "lr": 0.1,
            "steps": budget,
            "steps_to_target": t,
            "reached": t is not None,
            "diverged": False,
            "final_train_error": 0.2 if t is not None else 0.5,
            "final_minibatch_loss": 0.5,
        }
        for seed, t in enumerate(steps_by_seed)
    ]


def _rvt_analyse(records, p):
    """relu_vs_tanh.analyse on one condition (B) holding the given runs."""
    from pathlib import Path

    from bench.reproduce._common import Tuned

    sp = relu_vs_tanh.spec("default", "B") | {"target": 0.25, "steps": 600}
    return relu_vs_tanh.analyse({"B": Tuned(Path("."), p, records)}, {"B": sp}, {"B": []})


def test_relu_vs_tanh_analysis_puts_tanh_over_relu():
    relu = _runs([100] * 8, activation="relu")
    tanh = _runs([300] * 8, activation="tanh")
    p = _protocol([{"activation": "relu"}, {"activation": "tanh"}])
    s = _rvt_analyse(relu + tanh, p)
    assert s["activations"]["relu"]["median"] == 100 and s["activations"]["tanh"]["median"] == 300
    assert s["ratio_tanh_over_relu"]["ratio"] == pytest.approx(3.0)
    assert s["ratio_tanh_over_relu"]["paired"]
    assert relu_vs_tanh.verdict(s)[0] == HELD
    assert s["protocol"]["tuning_seeds"] == [1000, 1001] and s["protocol"]["brackets"]


def test_relu_vs_tanh_analysis_counts_a_censored_tanh():
    # tanh reaches the target on 3 of 8 seeds: its KM median is not reached, the ratio is a
    # lower bound, and ReLU still counts as faster.
    relu = _runs([100] * 8, activation="relu")
    tanh = _runs([200, 250, 300] + [None] * 5, activation="tanh")
    p = _protocol([{"activation": "relu"}, {"activation": "tanh"}])
    s = _rvt_analyse(relu + tanh, p)
    t = s["activations"]["tanh"]
    assert t["median"] is None and (t["reached"], t["censored"]) == (3, 5)
    assert s["ratio_tanh_over_relu"]["bound"] == "lower"
    assert relu_vs_tanh.verdict(s)[0] == HELD


def test_ratio_map_analysis_matches_cells_by_depth_and_sigma_w():
    sp = {"depth": [2], "init_scale": [1.0, 2.0], "target": 0.5, "steps": 600}
    recs, settings = [], []
    for w, (t_relu, t_tanh) in {1.0: (300, 100), 2.0: (100, 300)}.items():
        for act, t in (("relu", t_relu), ("tanh", t_tanh)):
            recs += _runs([t] * 8, activation=act, depth=2, init_scale=w)
            settings.append({"activation": act, "depth": 2, "init_scale": w})
    s = ratio_map.analyse(recs, _protocol(settings), sp)
    by_w = {c["sigma_w"]: c for c in s["cells"]}
    assert by_w[1.0]["winner"] == "tanh" and by_w[2.0]["winner"] == "relu"
    assert by_w[2.0]["ratio"]["ratio"] == pytest.approx(3.0)
    assert s["counts"] == {"relu": 1, "tanh": 1, "unclear": 0, "undetermined": 0}
    assert ratio_map.verdict(s)[0] == HELD
    top = s["largest_ratio_cell"]
    assert (top["depth"], top["sigma_w"]) == (2, 2.0) and "sigma_w 2" in ratio_map.verdict(s)[1]


# --------------------------------------------------------------------------- claim 1 analysis


def _sample(times, reached=None, seeds=None):
    from bench import stats

    t = np.asarray(times, float)
    e = np.ones(t.size, bool) if reached is None else np.asarray(reached, bool)
    outs = tuple("reached" if x else "censored" for x in e)
    return stats.Sample(t, e, outs, tuple(range(t.size)) if seeds is None else tuple(seeds))


def test_factor_effects_recover_known_main_effects():
    """Medians tanh/relu of 1 (A), 4 (init swap), 2 (input swap), 8 (B): by the 2x2 formulas
    the init effect is x4, the input effect x2, no interaction."""
    relu = [100.0] * 6
    cells = {
        c: {"relu": _sample(relu), "tanh": _sample([100.0 * k] * 6)}
        for c, k in (("A", 1), ("init", 4), ("input", 2), ("B", 8))
    }
    fe = relu_vs_tanh.factor_effects(cells, n_boot=200)
    assert fe["init"]["factor"] == pytest.approx(4)
    assert fe["input"]["factor"] == pytest.approx(2)
    assert fe["interaction"]["factor"] == pytest.approx(1)
    assert fe["init"]["ci"] == pytest.approx([4, 4])


def test_factor_effects_interval_covers_the_point_and_flags_unreached_medians():
    rng = np.random.default_rng(0)
    cells = {
        c: {
            "relu": _sample(100 * rng.lognormal(0, 0.3, 8)),
            "tanh": _sample(100 * k * rng.lognormal(0, 0.3, 8)),
        }
        for c, k in (("A", 1), ("init", 3), ("input", 1), ("B", 3))
    }
    fe = relu_vs_tanh.factor_effects(cells, n_boot=500)
    lo, hi = fe["init"]["ci"]
    assert lo < fe["init"]["factor"] < hi and lo > 1.5
    assert fe["input"]["ci"][0] < 1 < fe["input"]["ci"][1]
    cells["B"]["tanh"] = _sample([1000.0] * 8, reached=[False] * 8)
    fe = relu_vs_tanh.factor_effects(cells, n_boot=200)
    assert fe["init"]["factor"] is None and fe["init"]["ci"] == [None, None]
    assert fe["init"]["nonfinite_resamples"] == 1.0


def test_at_target_reads_the_first_evaluation_after_step_0():
    curves = {"eval_steps": np.array([0, 10, 20, 30]), "eval_error": np.array([0.5, 0.6, 0.4, 0.2])}
    rec = {"activation": "relu", "seed": 0, "steps": 30, "diverged": False}
    hits = {
        tg: relu_vs_tanh.at_target([(rec, curves)], tg)[0]["steps_to_target"]
        for tg in (0.65, 0.5, 0.3, 0.1)
    }
    assert hits == {0.65: 10, 0.5: 20, 0.3: 30, 0.1: None}
    gone = relu_vs_tanh.at_target([({**rec, "diverged": True}, curves)], 0.65)[0]
    assert gone["steps_to_target"] is None and not gone["reached"]


def _diag(sat_max, grad_init, q_init=(1.0, 1.0, 1.0)):
    return {
        "tanh": {
            "saturation_fraction": {"max": list(sat_max)},
            "grad_norm_w": {"init": list(grad_init)},
            "q": {"init": list(q_init)},
        }
    }


@pytest.mark.parametrize(
    "b, cause",
    [
        (_diag([0.0, 0.2, 0.01], [1.0, 1.0, 1.0]), "saturation"),
        (_diag([0.0, 0.01, 0.0], [0.05, 0.001, 0.0001], (1e-3, 1e-5, 1e-8)), "vanishing"),
        (_diag([0.0, 0.01, 0.0], [0.05, 0.5, 0.0001]), "neither"),
    ],
)
def test_diag_reading_names_the_cause_from_the_numbers(b, cause):
    a = _diag([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    got, text = relu_vs_tanh.diag_reading({"A": a, "B": b})
    assert got.startswith(cause) and "of A's" in text

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


def _diff(mean, lo, hi, n=8):
    """A paired test-error difference as activation_league.paired_diff returns it."""
    return {"mean": mean, "ci": [lo, hi], "n": n}


def _league(silu_vs_relu):
    rows = {
        "relu": {"activation": "relu", "vs_relu": None, "swish_minus": _diff(-0.002, -0.01, 0.006)},
        "silu": {"activation": "silu", "vs_relu": silu_vs_relu, "swish_minus": None},
        "selu": {
            "activation": "selu",
            "vs_relu": _diff(0.02, 0.01, 0.03),
            "swish_minus": _diff(-0.022, -0.03, -0.012),
        },
    }
    return {"activations": rows}


@pytest.mark.parametrize(
    "s, want",
    [
        (_league(_diff(-0.006, -0.010, -0.002)), HELD),  # silu's test error below relu's
        (_league(_diff(0.006, 0.002, 0.010)), NOT_HELD),
        (_league(_diff(-0.002, -0.006, 0.002)), INCONCLUSIVE),
        (_league(None), INCONCLUSIVE),  # not measured
    ],
)
def test_activation_league(s, want):
    st, text = activation_league.verdict(s)
    assert st == want
    if s["activations"]["silu"]["vs_relu"]:
        assert "selu -2.20 pp [-3.00, -1.20] (silu better)" in text  # baselines in words


def test_activation_league_flags_an_open_lr_bracket():
    s = _league(_diff(-0.006, -0.010, -0.002))
    s["activations"]["selu"]["bracket"] = {"closed": False, "open_side": ["below"]}
    assert "bracket left open" in activation_league.verdict(s)[1]
    assert "selu (below)" in activation_league.verdict(s)[1]
    s["activations"]["selu"]["bracket"] = {"closed": True, "open_side": []}
    assert "open" not in activation_league.verdict(s)[1]


# --------------------------------------------------------------------------- claim 4


def _glorot(
    std_ci=(0.005, 0.008),
    norm_ci=(0.6, 0.75),
    share_ci=(0.63, 1.0),
    escaped_ci=(0.63, 1.0),
    while_sat_ci=(0.0, 0.37),
    median=1500.0,
    closed=True,
):
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

    sigmoid = {
        "lr": 1.0,
        "bracket_closed": closed,
        "median": median,
        "ci": [median, median],
        "n": 8,
        "n_dropped": 8,
        "dropped_ci": list(share_ci),
        "n_escaped": 8,
        "escaped_ci": list(escaped_ci),
        "escape": {"median": 400.0, "ci": [300.0, 500.0]},
        "learned_while_saturated": 0,
        "learned_while_saturated_ci": list(while_sat_ci),
    }
    return {
        "part_a": {
            "cells": {
                "tanh/standard": cell("standard", std_ci),
                "tanh/xavier_uniform": cell("xavier_uniform", norm_ci),
            }
        },
        "part_b": {"sigmoid": sigmoid, "steps": 4000, "target": 0.5},
    }


@pytest.mark.parametrize(
    "s, want",
    [
        (_glorot(), HELD),
        (_glorot(std_ci=(1.5, 2.5)), NOT_HELD),  # gradient grows towards the input
        (_glorot(norm_ci=(0.1, 0.2)), NOT_HELD),  # normalised init: not within a factor 2
        (_glorot(share_ci=(0.0, 0.37)), NOT_HELD),  # sigmoid's top layer stays up
        (_glorot(while_sat_ci=(0.63, 1.0)), NOT_HELD),  # learns with the top layer saturated
        (_glorot(norm_ci=(0.4, 0.7)), INCONCLUSIVE),  # straddles 1/2
        (_glorot(std_ci=(0.5, 1.5)), INCONCLUSIVE),
        (_glorot(share_ci=(0.3, 0.9)), INCONCLUSIVE),
        (_glorot(escaped_ci=(0.0, 0.37)), INCONCLUSIVE),  # no escape in the budget: censored
        (_glorot(median=None), INCONCLUSIVE),  # the sigmoid net never learns
        (_glorot(closed=False), INCONCLUSIVE),  # its lr bracket is open
    ],
)
def test_glorot_bengio(s, want):
    assert glorot_bengio.verdict(s)[0] == want


# --------------------------------------------------------------------------- claim 5


def _he(
    x30=(0.63, 1.0),
    h30=(0.0, 0.37),
    x22=(0.0, 0.37),
    h22=(0.0, 0.37),
    r22=(1.5, 3.0),
    diverged=True,
    learned=(),
    grad=(0.8, 1.3),
):
    def g(ci, init):
        return {
            "stalled": 8 if ci[0] > 0.5 else 0,
            "n": 8,
            "n_stall_runs": 8,
            "stall_share_ci": list(ci),
            "lr": 1.0,
            "lr_search": [{"lr": 0.1}, {"lr": 10.0}],
            "largest_lr_diverged": diverged if init == "xavier_normal" else True,
            "learned_below_divergence": list(learned) if init == "xavier_normal" else [0.1],
        }

    def grads(depth):
        cell = {
            "mean": 1.0,
            "theory": 1.0,
            "over_theory": sum(grad) / 2,
            "over_theory_ci": list(grad),
            "agrees": 1 if 0.5 <= grad[0] and grad[1] <= 2 else -1 if grad[1] < 0.5 else 0,
        }
        return {"net": {"xavier_normal": cell, "he_normal": cell}}

    return {
        "by_depth": {
            "22": {
                "xavier_normal": g(x22, "xavier_normal"),
                "he_normal": g(h22, "he_normal"),
                "ratio_xavier_over_he": r(sum(r22) / 2, *r22),
                "grad_at_init": grads(22),
            },
            "30": {
                "xavier_normal": g(x30, "xavier_normal"),
                "he_normal": g(h30, "he_normal"),
                "ratio_xavier_over_he": r(3.0, 2.0, None, "lower"),
                "grad_at_init": grads(30),
            },
        },
    }


@pytest.mark.parametrize(
    "s, want",
    [
        (_he(), HELD),
        (_he(x30=(0.0, 0.37)), NOT_HELD),  # Xavier trains at 30 layers
        (_he(h30=(0.63, 1.0)), NOT_HELD),  # He stalls too
        (_he(x22=(0.63, 1.0)), NOT_HELD),  # Xavier already stalls at 22
        (_he(r22=(0.4, 0.8)), NOT_HELD),  # Xavier earlier at 22
        (_he(grad=(0.1, 0.3)), NOT_HELD),  # gradient at init far below the theory
        (_he(x30=(0.3, 0.9)), INCONCLUSIVE),  # the stall share straddles 1/2
        (_he(r22=(0.8, 1.5)), INCONCLUSIVE),
        (_he(diverged=False), INCONCLUSIVE),  # lrs above the search untested
        (_he(learned=(3.0,)), INCONCLUSIVE),  # a Xavier tuning run learned at some lr
        (_he(grad=(0.4, 1.5)), INCONCLUSIVE),
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


def _dead_arm(died_bias0, shift_ci, label="CNN 8-8-16, LeCun-normal"):
    """An arm: runs that died (of 10) per lr at bias 0, and the bias-0.01 onset-shift CI."""
    cells = [
        {"died": {"k": k, "n": 10, "p": k / 10, "ci95": _common.proportion_ci(k, 10)}}
        for k in died_bias0
    ]
    return {
        "label": label,
        "biases": [0.0, 0.01],
        "by_bias": {"0": {"cells": cells, "death_onset": {"lr": 0.3}}},
        "shifts": {"0.01": {"mean": sum(shift_ci) / 2, "ci95": list(shift_ci), "n_seeds": 10}},
    }


def _dead(died=(0, 2, 9, 10), shift=(0.5, 2.0)):
    return {"arms": [_dead_arm(died, shift), _dead_arm((0, 1, 9, 10), (1.0, 2.0), "MLP")]}


@pytest.mark.parametrize(
    "s, want",
    [
        (_dead(), HELD),  # death sets in inside the grid; bias 0.01 moves it to larger lrs
        (_dead(shift=(-2.0, -0.5)), NOT_HELD),  # the bias makes ReLUs die at smaller lrs
        (_dead(shift=(-0.5, 0.5)), NOT_HELD),  # moves death by less than one grid step
        (_dead(died=(0, 1, 0, 1)), NOT_HELD),  # no lr kills half the runs
        (_dead(died=(0, 2, 7, 8)), INCONCLUSIVE),  # death never established
        (_dead(shift=(-0.5, 1.5)), INCONCLUSIVE),
    ],
)
def test_dead_relu(s, want):
    assert dead_relu.verdict(s)[0] == want


# Claim 8 (saturation): tests/bench/test_claim_saturation.py.


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
    answer = ratio_map.answer(s)
    assert "ReLU is measurably faster (95% CI of tanh/relu above 1) in 1 cells and tanh in 1" in (
        answer
    )
    assert "3.00 [" in answer and "at depth 2, sigma_w 2" in answer


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
    # tanh never reaches the target in B: its median is at least the budget, so log r(B) and
    # every effect with a positive coefficient on it are lower bounds, the interaction too
    # (+B), while nothing bounds an effect from both sides.
    cells["B"]["tanh"] = _sample([1000.0] * 8, reached=[False] * 8)
    fe = relu_vs_tanh.factor_effects(cells, n_boot=200)
    relu_meds = {c: np.median(cells[c]["relu"].time) for c in cells}
    tanh_meds = {c: np.median(cells[c]["tanh"].time) for c in ("A", "init", "input")}
    log_r = {c: np.log(tanh_meds[c] / relu_meds[c]) for c in tanh_meds}
    log_r["B"] = np.log(1000.0 / relu_meds["B"])
    want_init = np.exp(0.5 * (log_r["init"] + log_r["B"] - log_r["A"] - log_r["input"]))
    assert fe["init"]["factor"] == pytest.approx(want_init)
    assert fe["init"]["bound"] == fe["input"]["bound"] == fe["interaction"]["bound"] == "lower"
    assert fe["init"]["censored_resamples"] == 1.0
    # relu never reaches it in the init swap: log r(init) is an upper bound; the init effect
    # (+init) becomes an upper bound, the input effect (-init) a lower bound.
    cells["B"]["tanh"] = cells["A"]["tanh"]
    cells["init"]["relu"] = _sample([1000.0] * 8, reached=[False] * 8)
    fe = relu_vs_tanh.factor_effects(cells, n_boot=200)
    assert fe["init"]["bound"] == "upper" and fe["input"]["bound"] == "lower"
    # both conflict: tanh censored in B pushes the init effect up, relu in init pushes it down
    cells["B"]["tanh"] = _sample([1000.0] * 8, reached=[False] * 8)
    fe = relu_vs_tanh.factor_effects(cells, n_boot=200)
    assert fe["init"]["bound"] == "undetermined" and fe["init"]["factor"] is None
    assert fe["input"]["bound"] == "lower"  # +B lower, -init lower: both push it up


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

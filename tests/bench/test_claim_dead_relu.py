"""The dead-relu claim's pure pieces, against hand-made records and independent formulas.

What a run became (diverged / collapsed / died), the per-cell proportions with their
Clopper-Pearson intervals (from the beta quantiles, not from the code under test), the onset of
death along the lr grid and its range, the per-seed onsets and their paired shifts, and the
verdict's rules; plus the sweep specs: dead units and training error counted on the whole
training subset, every size a valid config.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from bench import config, results
from bench.diagnostics import METRICS
from bench.reproduce import dead_relu as dr

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"
LN10 = math.log(10)


def rec(seed=0, lr=0.1, bias=0.0, init="lecun_normal", *, dead=(0.0, 0.0), err=0.2, loss=0.5,
        diverged=False, stt=None):  # fmt: skip
    """A sweep record with the fields the claim reads."""
    return {
        "seed": seed,
        "lr": lr,
        "bias_init": bias,
        "init": init,
        "steps": 100,
        "diverged": diverged,
        "divergence_step": 7 if diverged else None,
        "final_train_error": None if diverged else err,
        "final_minibatch_loss": None if diverged else loss,
        "steps_to_target": stt,
        "reached": stt is not None,
        "final_dead_fraction": list(dead),
        "init_dead_fraction": [0.0] * len(dead),
        "init_q": [1.0, 0.25][: len(dead)],
    }


def cp(k: int, n: int) -> list[float]:
    """Clopper-Pearson 95% interval from the beta quantiles (the textbook formula)."""
    lo = 0.0 if k == 0 else sps.beta.ppf(0.025, k, n - k + 1)
    hi = 1.0 if k == n else sps.beta.ppf(0.975, k + 1, n - k)
    return [lo, hi]


# --------------------------------------------------------------------------- one run


def test_run_state_outcomes():
    ok = dr.run_state(rec(dead=(0.1, 0.49)))
    assert not (ok["died"] or ok["collapsed"] or ok["diverged"] or ok["failed"])
    assert ok["dead_max"] == pytest.approx(0.49)
    died = dr.run_state(rec(dead=(0.1, 0.5)))  # exactly DEAD_LEVEL counts
    assert died["died"] and died["failed"] and not died["collapsed"]
    # A run that reached the target and then fell to chance ended collapsed.
    fell = dr.run_state(rec(err=0.9, loss=LN10, stt=20, dead=(0.0, 1.0)))
    assert fell["collapsed"] and fell["died"]
    by_loss = dr.run_state(rec(err=0.5, loss=0.99 * LN10))  # loss of a constant prediction
    assert by_loss["collapsed"] and not by_loss["died"]


def test_run_state_diverged_dead_fraction_is_unmeasured():
    # A diverged run's record holds the dead fraction of its last finite diagnostic point (here
    # init); it must neither count as died nor enter the medians.
    s = dr.run_state(rec(diverged=True, dead=(0.9, 1.0)))
    assert s["diverged"] and s["failed"]
    assert not s["died"] and not s["collapsed"]
    assert s["dead"] is None and s["dead_max"] is None


# --------------------------------------------------------------------------- a cell


def test_cell_counts_and_intervals():
    rs = [
        rec(0, dead=(0.0, 0.8)),  # died
        rec(1, dead=(0.0, 0.6), err=0.9, loss=LN10),  # died and collapsed
        rec(2, diverged=True),
        rec(3, dead=(0.2, 0.1), stt=40),
        rec(4, dead=(0.0, 0.0), stt=60),
    ]
    c = dr.cell(list(reversed(rs)))
    assert c["seeds"] == [0, 1, 2, 3, 4]
    assert c["died_per_seed"] == [True, True, False, False, False]
    assert (c["died"]["k"], c["collapsed"]["k"], c["diverged"]["k"], c["failed"]["k"]) == (
        2,
        1,
        1,
        3,
    )
    assert c["collapsed_and_died"] == 1
    for key, k in (("died", 2), ("diverged", 1), ("failed", 3)):
        np.testing.assert_allclose(c[key]["ci95"], cp(k, 5), atol=1e-9)
    # medians over the four non-diverged seeds only
    layer2 = [0.8, 0.6, 0.1, 0.0]
    assert c["dead_per_layer"][1]["n"] == 4
    assert c["dead_per_layer"][1]["median"] == pytest.approx(np.median(layer2))
    assert c["dead_max"]["median"] == pytest.approx(np.median([0.8, 0.6, 0.2, 0.0]))
    assert c["init_rms"] == pytest.approx([1.0, 0.5])
    # steps to target: 2 of 5 reached, so the KM median is not reached
    assert c["steps"]["reached"] == 2 and c["steps"]["median"] is None


# --------------------------------------------------------------------------- onset


def _props(ks, n=10):
    return [{"k": k, "n": n, "p": k / n, "ci95": cp(k, n)} for k in ks]


@pytest.mark.parametrize(
    "ks, want",
    [
        # CP upper of 1/10 is 0.445 (< 1/2), of 2/10 0.556; CP lower of 8/10 is 0.444,
        # of 9/10 0.555: so lo is the first lr with >= 2 died, hi the first with >= 9.
        ([0, 1, 2, 5, 9], (0.4, 0.3, 0.5, False, False)),
        ([0, 0, 1, 1, 1], (None, None, None, False, True)),
        ([10, 10, 9, 10, 10], (0.1, 0.1, 0.1, True, False)),
        ([0, 3, 8, 8, 6], (0.3, 0.2, None, False, False)),
    ],
)
def test_onset(ks, want):
    lrs = [0.1, 0.2, 0.3, 0.4, 0.5]
    keys = ("lr", "lo", "hi", "below_grid", "never")
    assert dr.onset(lrs, _props(ks)) == dict(zip(keys, want, strict=True))


def test_seed_onsets_take_the_first_death():
    def c(died):
        return {"seeds": [0, 1, 2], "died_per_seed": died}

    cells = [c([False, True, False]), c([True, False, False]), c([True, True, False])]
    assert dr.seed_onsets([0.1, 0.2, 0.3], cells) == {0: 1, 1: 0, 2: 3}


def test_shift_is_other_minus_base_paired_on_seeds():
    base = {0: 1, 1: 0, 2: 3, 3: 2}
    other = {0: 2, 1: 0, 2: 3, 3: 1, 9: 0}  # seed 9 has no partner
    s = dr.shift(base, other, n_grid=3)
    assert s["n_seeds"] == 4 and s["per_seed"] == [1, 0, 0, -1]
    assert s["mean"] == pytest.approx(0.0)
    assert (s["up"], s["down"], s["same"], s["censored"]) == (1, 1, 2, 1)
    lo, hi = s["ci95"]
    assert -1 <= lo <= 0 <= hi <= 1


# --------------------------------------------------------------------------- verdict rules


def arm(died_b0, shift_ci, *, onset_b0=0.3, label="CNN 8-8-16, LeCun-normal"):
    """An arm of the summary with P(died) per lr at bias 0 (k of 10) and the 0.01 shift CI."""
    cells = [{"died": p} for p in _props(died_b0)]
    return {
        "label": label,
        "biases": [0.0, 0.01],
        "by_bias": {"0": {"cells": cells, "death_onset": {"lr": onset_b0}}},
        "shifts": {"0.01": {"mean": sum(shift_ci) / 2, "ci95": list(shift_ci), "n_seeds": 10}},
    }


@pytest.mark.parametrize(
    "ks, want",
    [
        ([0, 2, 9, 10], HELD),  # established at some lr, excluded at the smallest
        ([0, 1, 0, 1], NOT_HELD),  # excluded at every lr
        ([0, 2, 7, 8], INCONCLUSIVE),  # never established
        ([9, 10, 10, 10], INCONCLUSIVE),  # already at the smallest lr: no onset in the grid
        ([3, 9, 10, 10], INCONCLUSIVE),  # the smallest lr is not excluded
    ],
)
def test_lr_part(ks, want):
    assert dr.lr_part(arm(ks, (0, 0)))[0] == want


@pytest.mark.parametrize(
    "ci, onset_b0, want",
    [
        ((0.5, 2.0), 0.3, HELD),  # later death with the bias
        ((-2.0, -0.5), 0.3, NOT_HELD),  # earlier death
        ((-0.4, 0.6), 0.3, NOT_HELD),  # within one grid step: no resolvable effect
        ((0.0, 0.0), 0.3, NOT_HELD),
        ((-0.5, 1.5), 0.3, INCONCLUSIVE),
        ((0.5, 2.0), None, INCONCLUSIVE),  # death never set in at bias 0: nothing to move
    ],
)
def test_bias_part(ci, onset_b0, want):
    assert dr.bias_part(arm([0, 2, 9, 10], ci, onset_b0=onset_b0))[0] == want


def test_bias_part_without_the_bias():
    a = arm([0, 2, 9, 10], (0.5, 2.0))
    a["shifts"] = {}
    assert dr.bias_part(a)[0] == INCONCLUSIVE


def test_verdict_combines_every_part_of_every_arm():
    held = arm([0, 2, 9, 10], (0.5, 2.0))
    assert dr.verdict({"arms": [held, held]})[0] == HELD
    worse = arm([0, 2, 9, 10], (-2.0, -0.5), label="MLP 6x64, LeCun-normal")
    st, text = dr.verdict({"arms": [held, worse]})
    assert st == NOT_HELD and "MLP 6x64" in text and "smaller lrs" in text
    unsure = arm([0, 2, 7, 8], (0.5, 2.0))
    assert dr.verdict({"arms": [held, unsure]})[0] == INCONCLUSIVE


# --------------------------------------------------------------------------- analysis


def test_analyse_pairs_bias_on_seeds():
    lrs = [0.1, 0.3, 1.0]
    recs = []
    for seed in range(4):
        for b in (0.0, 0.01):
            for i, lr in enumerate(lrs):
                # bias 0 dies from lr index 1, bias 0.01 from index 2 (seed 3 never)
                first = 1 if b == 0 else (2 if seed < 3 else 3)
                recs.append(rec(seed, lr, b, dead=(0.0, 0.9 if i >= first else 0.1)))
    sp = {"init": ["lecun_normal"], "bias_init": [0.0, 0.01], "lr": lrs, "depth": 2, "width": 8}
    s = dr.analyse({"mlp": recs}, {"mlp": sp})
    (a,) = s["arms"]
    assert a["by_bias"]["0"]["death_onset"]["lr"] == 0.3
    assert a["by_bias"]["0.01"]["death_onset"]["lr"] == 1.0
    sh = a["shifts"]["0.01"]
    assert sh["per_seed"] == [1, 1, 1, 2] and sh["censored"] == 1
    assert sh["mean"] == pytest.approx(1.25)
    assert s["n_runs"] == len(recs) and s["protocol"]["statistical_unit"] == "seed"


# --------------------------------------------------------------------------- specs


@pytest.mark.parametrize("size", ["tiny", "default", "full"])
@pytest.mark.parametrize("model", dr.MODELS)
def test_spec_counts_on_the_whole_training_set(size, model):
    sp = dr.spec(size, model)
    cfg = config.parse(sp)  # a valid sweep
    n = sp["data"]["limit_train"]
    assert cfg.eval_size == cfg.diag_size == n  # every training example
    assert cfg.diagnostics and cfg.diag_every == sp["steps"]  # measured at the end
    assert cfg.axes["optimizer"] == ("momentum",) and cfg.axes["activation"] == ("relu",)
    assert len(sp["seed"]) >= (10 if size != "tiny" else 2)
    assert sp["bias_init"][0] == 0.0 and sorted(sp["lr"]) == sp["lr"]
    if size != "tiny":
        assert dr.CLAIM_BIAS in sp["bias_init"]
    if model == "mlp" and size != "tiny":
        assert list(sp["bias_init"]) == list(dr.BIASES) and set(sp["init"]) == set(dr.INITS)
    assert cfg.init_std == dr.INIT_STD


def test_spec_rejects_unknown_model():
    with pytest.raises(ValueError, match="model"):
        dr.spec("tiny", "resnet")


def test_slim_records_keeps_what_the_claim_reads(tmp_path):
    full = {f"{w}_{m}": [0.5, 0.25] for w in ("init", "final") for m in METRICS}
    recs = [{**rec(seed), **full, "config_id": f"c{seed:05d}", "group": "g000"} for seed in (0, 1)]
    results.append_records(tmp_path, recs)
    dr._slim_records(tmp_path)
    slim = results.read_records(tmp_path)
    assert [r["config_id"] for r in slim] == ["c00000", "c00001"]
    for r, orig in zip(slim, recs, strict=True):
        for m in METRICS:
            for w in ("init", "final"):
                assert (f"{w}_{m}" in r) == (m in dr.DIAG_KEEP)
        assert {k: v for k, v in orig.items() if k in r} == r  # nothing else changed
        assert dr.run_state(r) == dr.run_state(orig)

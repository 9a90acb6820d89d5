"""glorot-bengio's analysis pieces against hand-made data.

The escape of the sigmoid top layer is checked on hand-made activation curves (drop then
recovery, no drop, no recovery, a diverged run); the [0, 1] pixel scale against the images it
was standardised from (numpy, float64); part B's analysis against hand-made runs (escape steps,
censoring kept, learning while saturated); the mean-field prediction in the linear regime
against sigma_w^2 per layer.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import data
from bench.reproduce import glorot_bengio as gb

STEPS = np.arange(0, 1100, 100)


def test_escape_drop_then_recovery():
    top = [0.5, 0.02, 0.01, 0.03, 0.05, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3]
    e = gb.escape(STEPS, top)
    assert e["line"] == pytest.approx(0.05)
    assert e["dropped"] == 100
    assert e["escaped"] == 400  # back at the line counts
    assert e["min"] == pytest.approx(0.01)


def test_escape_never_dropped_and_never_escaped():
    assert gb.escape(STEPS, [0.5] * 11)["dropped"] is None
    assert gb.escape(STEPS, [0.5, 0.1, 0.06, 0.05, 0.1] + [0.2] * 6)["dropped"] is None
    stuck = gb.escape(STEPS, [0.5] + [0.01] * 10)
    assert stuck["dropped"] == 100 and stuck["escaped"] is None  # censored
    # a diverged run reads NaN after divergence: it never escapes
    dead = gb.escape(STEPS, [0.5, 0.01] + [math.nan] * 9)
    assert dead["dropped"] == 100 and dead["escaped"] is None


def test_pixels_undo_the_standardisation():
    rng = np.random.default_rng(0)
    p = rng.integers(0, 256, (50, 4, 4, 1)).astype(np.float64) / 255
    p[0, 0, 0, 0], p[1, 0, 0, 0] = 0.0, 1.0  # both ends present, as in Fashion-MNIST
    m, s = p.mean(), p.std()
    ds = data.Dataset(
        ((p - m) / s).astype(np.float32),
        np.zeros(50, np.int32),
        ((p[:10] - m) / s).astype(np.float32),
        np.zeros(10, np.int32),
        10,
        "x",
    )
    back = gb.pixels(ds)
    np.testing.assert_allclose(back.x_train, p, atol=1e-6)
    np.testing.assert_allclose(back.x_test, p[:10], atol=1e-6)


def _pair(seed, top, stt, diverged=False):
    n = len(top)
    mean = np.full((n, 4), 0.5)
    mean[:, -1] = top
    rec = {
        "activation": "sigmoid",
        "seed": seed,
        "steps_to_target": stt,
        "reached": stt is not None,
        "steps": 1000,
        "diverged": diverged,
        "final_train_error": None if diverged else (0.3 if stt else 0.8),
    }
    curves = {
        "diag_steps": STEPS,
        "diag_act_mean": mean,
        "eval_steps": STEPS,
        "eval_error": np.linspace(0.9, 0.3, n),
    }
    return rec, curves


def test_analyse_b_escape_steps_and_censoring():
    esc = [0.5, 0.01, 0.01, 0.1] + [0.2] * 7  # escapes at 300
    late = [0.5, 0.01, 0.01, 0.01, 0.01, 0.01, 0.1] + [0.2] * 4  # escapes at 600
    stuck = [0.5] + [0.01] * 10  # never escapes
    pairs = [
        _pair(0, esc, 500),
        _pair(1, late, 400),  # reached the target while still saturated
        _pair(2, stuck, None),
        _pair(3, [0.5] * 11, 300),  # never dropped
        _pair(4, esc, 800),  # escaped (300) before reaching the target
    ]
    p = {
        "protocol": {
            "tuning_seeds": [1000],
            "measurement_seeds": [0, 1, 2, 3, 4],
            "lr_grid": [1.0],
            "lr_extensions": 0,
            "estimator": "KM",
            "ci_method": "percentile",
            "n_measured": 5,
            "n_censored": 1,
            "n_failed": 0,
        },
        "settings": [
            {
                "activation": "sigmoid",
                "lr": 1.0,
                "label": "sigmoid",
                "bracket": {"below": 0.3, "above": 3.0, "closed": True, "open_side": []},
                "tuning": [{"lr": 1.0, "median_steps": 500.0, "diverged": 0, "collapsed": 0}],
            }
        ],
    }
    b = gb.analyse_b(pairs, p, {"steps": 1000})["cells"]["sigmoid"]
    assert b["top_dropped_step"] == [100, 100, 100, None, 100]
    assert b["top_escape_step"] == [300, 600, None, None, 300]
    assert b["n_dropped"] == 4 and b["n_escaped"] == 3
    assert b["learned_while_saturated"] == 1  # seed 1: target at 400, escape at 600
    # KM over the 4 runs that dropped, the stuck one censored at the budget: numpy median
    # with the censored run at +inf
    assert b["escape"]["median"] == pytest.approx(np.median([300, 300, 600, np.inf]))
    assert b["escape"]["n"] == 4 and b["escape"]["censored"] == 1


def test_predict_linear_regime():
    # Tiny inputs keep tanh in its linear regime: attenuation -> sigma_w^2 per layer.
    p = gb.predict("tanh", "xavier_uniform", depth=5, width=1000, n_in=784, x_sq=1e-8)
    np.testing.assert_allclose(p["attenuation"], 1.0, rtol=1e-5)
    assert p["sigma_sq"][0] == pytest.approx(2 * 784 / 1784)

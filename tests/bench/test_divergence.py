"""A diverged configuration: every later metric reads NaN and its record never reaches the target.

One tiny group, diagnostics on, trains two learning rates: 0.05 (trains) and 1e6 (its first
update throws every example into class 0, the next loss exceeds ``loss_bound``). The labels
are 90% class 0, so the parameters frozen at divergence classify the evaluation set with ~10%
error: a diverged lane whose evaluation were not masked would "reach" the 30% target after
diverging, while before diverging its error is ~70%.
"""

from __future__ import annotations

import numpy as np
import pytest
from _bench_util import TINY

from bench import config, diagnostics, execute, sweep, train

GOOD_LR, BAD_LR, TARGET = 0.05, 1e6, 0.3


@pytest.fixture(scope="module")
def run():
    spec = {**TINY, "lr": [GOOD_LR, BAD_LR], "seed": 0, "loss_bound": 100.0, "target": TARGET}
    cfg = config.parse({**spec, "diagnostics": True, "diag_every": TINY["eval_every"]})
    ((static, configs),) = config.expand(cfg)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = np.where(rng.random(256) < 0.9, 0, rng.integers(1, 4, 256)).astype(np.int32)
    metrics, _ = execute.run_group(static, configs, execute.train_data(x, y, cfg.eval_size), 4)
    group = sweep.Group(0, static, configs, 0)
    return cfg, static, metrics, sweep.make_records(cfg, group, metrics, None)


def test_only_the_huge_learning_rate_diverges(run):
    _, static, m, _ = run
    assert m["diverged"].tolist() == [False, True]
    s = int(m["divergence_step"][1])
    assert 0 < s < static.steps - static.eval_every  # evaluations remain after it
    assert m["divergence_step"][0] == -1
    for k in ("loss", "minibatch_error", "eval_error"):
        assert np.isfinite(m[k][0]).all(), k


def test_every_metric_after_divergence_is_nan(run):
    _, static, m, _ = run
    s = int(m["divergence_step"][1])
    steps = np.arange(static.steps)
    for k in ("loss", "minibatch_error"):  # step t's metrics come from the update at step t
        assert np.isnan(m[k][1, steps >= s]).all(), k
        assert np.isfinite(m[k][1, steps < s]).all(), k
    # An evaluation at step e sees the parameters after steps 0 .. e - 1.
    ev = train.eval_steps(static)
    assert np.isnan(m["eval_error"][1, ev > s]).all()
    assert np.isfinite(m["eval_error"][1, ev <= s]).all()
    d = train.diag_steps(static)
    for k in diagnostics.METRICS:
        assert np.isnan(m[f"diag_{k}"][1, d > s]).all(), k
    for k in ("grad_norm_w", "q", "act_var"):
        assert np.isfinite(m[f"diag_{k}"][1, d <= s]).all(), k


def test_record_never_reaches_the_target_after_diverging(run):
    _, static, m, recs = run
    good, bad = recs
    s = int(m["divergence_step"][1])
    assert bad["diverged"] and bad["status"] == "diverged" and bad["divergence_step"] == s
    assert bad["steps_to_target"] is None or bad["steps_to_target"] <= s
    assert not bad["reached"]  # ~70% error before diverging, target 30%
    assert bad["final_train_error"] is None and bad["final_minibatch_loss"] is None
    before = m["eval_error"][1, train.eval_steps(static) <= s]
    assert bad["min_train_error"] == pytest.approx(float(before.min()))
    # The diagnostics' "final" point is the last one measured before diverging.
    last = int(np.flatnonzero(train.diag_steps(static) <= s)[-1])
    assert bad["final_q"] == pytest.approx(m["diag_q"][1, last].tolist())
    # The good lane trains to the target (so the target is reachable on this data).
    assert good["reached"] and not good["diverged"] and good["status"] == "done"

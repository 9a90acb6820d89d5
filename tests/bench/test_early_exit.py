"""Early exit: a lane stops once its error stayed at or below the target; nothing else changes."""

import numpy as np
import pytest
from _bench_util import TINY

from bench import config, execute, sweep

SPEC = {
    **TINY,
    "steps": 60,
    "eval_every": 5,
    "target": 0.45,
    "lr": [3.0, 1.0, 0.3, 0.03, 1e4],  # 1e4 diverges, 0.03 does not reach the target
    "seed": [0, 1],
    "loss_bound": 50.0,
}


def _run(strategy: str, early_exit: int):
    cfg = config.parse({**SPEC, "early_exit": early_exit, "strategy": strategy})
    (group,) = sweep.groups(cfg)
    data, num_classes = sweep._load_data(cfg, group.static.dataset)
    metrics, _ = execute.run_group(
        group.static, group.configs, data, num_classes, strategy=strategy
    )
    return cfg, group, metrics


def _expected_stop(ev: np.ndarray, diverged: bool, div_step: int, k: int, every: int, steps: int):
    """Steps trained, from the full-budget curve: the first evaluation (after step 0) that ends
    a run of k at or below the target, the end of the chunk that diverged, or the budget."""
    if diverged:
        return (div_step // every + 1) * every
    streak = 0
    for i in range(1, len(ev)):
        streak = streak + 1 if ev[i] <= SPEC["target"] else 0
        if streak == k:
            return i * every
    return steps


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_early_exit_stops_where_the_full_run_says_and_changes_nothing_before(strategy):
    k = 2
    cfg, group, full = _run(strategy, 0)
    _, _, early = _run(strategy, k)
    every, steps = SPEC["eval_every"], SPEC["steps"]
    stopped = early["steps_trained"]
    outcomes = set()
    for j in range(len(group.configs)):
        want = _expected_stop(
            full["eval_error"][j], full["diverged"][j], full["divergence_step"][j], k, every, steps
        )
        assert stopped[j] == want, (group.configs[j], stopped[j], want)
        outcomes.add("stopped early" if want < steps and not full["diverged"][j] else "other")
        n_eval = want // every + 1
        np.testing.assert_array_equal(
            early["eval_error"][j, :n_eval], full["eval_error"][j, :n_eval]
        )
        np.testing.assert_array_equal(early["loss"][j, :want], full["loss"][j, :want])
        assert np.isnan(early["eval_error"][j, n_eval:]).all()
        assert np.isnan(early["loss"][j, want:]).all()
    assert outcomes == {"stopped early", "other"}  # the grid exercises both

    recs_full = sweep.make_records(cfg, group, full, None)
    recs_early = sweep.make_records(cfg, group, early, None)
    for a, b in zip(recs_full, recs_early, strict=True):
        for key in ("steps_to_target", "reached", "diverged", "divergence_step"):
            assert a[key] == b[key], key
        assert b["steps_trained"] <= steps
        if not b["diverged"]:  # where it stopped, not a NaN from the chunks never run
            assert b["final_train_error"] is not None and b["final_minibatch_loss"] is not None


def test_early_exit_needs_the_full_budget_for_diagnostics():
    with pytest.raises(ValueError, match="early_exit"):
        config.parse({**SPEC, "early_exit": 2, "diagnostics": True})

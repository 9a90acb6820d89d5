"""Early exit against the full budget on the same sweep (``bench.perf.early_exit``).

Timed with ``--benchmark-enable``; in the default test command it runs once, untimed, at a tiny
size, and its ratios land in ``extra_info`` either way.
"""

from bench.perf import early_exit

TINY = {
    "dataset": "teacher-student",
    "data": {"n_train": 512, "n_test": 64, "input_dim": 8, "num_classes": 4},
    "depth": 2,
    "width": 16,
    "batch_size": 32,
    "eval_every": 5,
    "eval_size": 128,
    "target": 0.5,
    "lr": 0.3,
    "seed": [0, 1, 2, 3],
}


def test_early_exit_vs_full_budget(benchmark):
    res = benchmark.pedantic(
        early_exit.measure,
        kwargs={"needed_steps": 20, "budget_factor": 8, "rounds": 1, "spec": TINY},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(
        early_over_needed=res["early_over_needed"],
        full_over_early=res["full_over_early"],
        steps_trained=res["steps_trained"],
        budget_steps=res["budget_steps"],
    )
    # Every lane stopped before the budget, so the three programs did different work.
    assert max(res["steps_trained"]) < res["budget_steps"]
    assert res["needed_steps"] == max(res["steps_trained"])
    assert set(res["seconds"]) == {"early", "needed", "full"}

"""Early exit against the full budget: what a steps-to-target sweep saves by stopping lanes.

The sweep's budget is ``budget_factor`` times the steps its configurations need (as a protocol
must size it, so that a slow activation is not censored). Three programs of the same group run
side by side, repetitions interleaved, compile time excluded:

- ``full``: the whole budget (``early_exit = 0``);
- ``early``: the same budget with ``early_exit``;
- ``needed``: no early exit, with the budget cut to the steps the slowest lane actually needed
  (what a clairvoyant user would have set): the time the needed steps take.

``early / needed`` is the overhead of early exit (target: within ``TARGET``), and ``full /
early`` the saving.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

TARGET = 1.3  # early-exit wall time / the time of the steps actually needed

SPEC: dict[str, Any] = {
    "experiment": "perf-early-exit",
    "dataset": "mnist1d",
    "data": {"num_samples": 4000},
    "model": "mlp",
    "activation": "relu",
    "depth": 4,
    "width": 64,
    "batch_size": 128,
    "eval_every": 25,
    "eval_size": 1000,
    "target": 0.3,
    "lr": 0.5,  # ReLU's best lr for this target (bench/configs/quick.toml's tuning stage)
    "seed": [0, 1, 2, 3, 4, 5, 6, 7],
}


def measure(
    needed_steps: int = 450,
    budget_factor: int = 8,
    early_exit: int = 2,
    rounds: int = 3,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Seconds of each program (median of ``rounds`` interleaved), the ratios and the steps.

    ``needed_steps`` (about ReLU's steps to 30% here) sizes the budget, ``budget_factor`` x it;
    the ``needed`` program then runs exactly the steps the slowest lane trained.
    """
    from bench import config, execute, sweep

    spec = {**SPEC, **(spec or {})}
    budget = needed_steps * budget_factor
    cfg = config.parse({**spec, "steps": budget, "early_exit": early_exit})
    (group,) = sweep.groups(cfg)
    data, num_classes = sweep._load_data(cfg, group.static.dataset)
    mesh = execute.config_mesh()

    def run(static):
        return execute.run_group(static, group.configs, data, num_classes, mesh=mesh)

    # The first run of each program compiles it (run_group times that apart); the early-exit
    # one also says how far each lane went.
    early_metrics, _ = run(group.static)
    trained = np.asarray(early_metrics["steps_trained"])
    longest = int(trained.max())
    needed = dataclasses.replace(group.static, steps=max(longest, cfg.eval_every), early_exit=0)
    programs = {
        "early": group.static,
        "needed": needed,
        "full": dataclasses.replace(group.static, early_exit=0),
    }
    times: dict[str, list[float]] = {k: [] for k in programs}
    for name in ("needed", "full"):
        times[name].append(run(programs[name])[1]["run_s"])
    times["early"].append(run(group.static)[1]["run_s"])
    for _ in range(rounds - 1):
        for name, static in programs.items():
            times[name].append(run(static)[1]["run_s"])
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {
        "budget_steps": budget,
        "steps_trained": [int(s) for s in trained],
        "needed_steps": int(needed.steps),
        "budget_over_median_trained": budget / float(np.median(trained)),
        "early_exit": early_exit,
        "n_configs": len(group.configs),
        "seconds": med,
        "early_over_needed": med["early"] / med["needed"],
        "full_over_early": med["full"] / med["early"],
        "target": TARGET,
        "ok": med["early"] / med["needed"] <= TARGET,
    }

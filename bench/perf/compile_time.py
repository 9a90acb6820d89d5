"""Compile time of the harness program against the depth of the MLP.

Trace + lower + compile of the group program of a width-64 MLP at depth 4, 50 and 200: the
hidden layers run in a ``lax.scan``, so the program, and its compile time, should not grow
with the depth (target: depth 200 within ``COMPILE_TARGET`` x depth 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.perf.common import median
from bench.perf.harness import harness_program, mlp_sweep

COMPILE_TARGET = 1.5  # depth 200 / depth 4


def compile_seconds(depth: int, width: int = 64, n_configs: int = 4, steps: int = 10) -> float:
    """Trace + lower + compile of the harness program of an MLP of this depth."""
    setup = mlp_sweep(n_configs=n_configs, width=width, depth=depth, steps=steps)
    _, s, _ = harness_program(setup, "vmap")
    return s


def bench_compile(depths: Sequence[int] = (4, 50, 200), rounds: int = 2) -> dict[str, Any]:
    times: dict[int, list[float]] = {d: [] for d in depths}
    for _ in range(rounds):  # interleaved: one compile of each depth per round
        for d in depths:
            times[d].append(compile_seconds(d))
    med = {str(d): median(v) for d, v in times.items()}
    return {
        "compile_s": med,
        "ratio_200_over_4": med[str(max(depths))] / med[str(min(depths))],
    }

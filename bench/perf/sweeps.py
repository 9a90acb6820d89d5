"""Small-MLP sweeps: the harness against the ways a user would otherwise train N networks.

One group of N small MLPs (MNIST-1D, 40 -> W x 4 -> 10 tanh, SGD, batch 128, N learning rates,
identical minibatches and initial weights): the harness (``auto`` and each forced strategy)
against ``bench.baselines`` (a naive JAX loop, a PyTorch loop, torch.func vmap), timed
interleaved, with each way's final losses checked against the harness's. Also the GPU's
vmap-against-sequential comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from bench.perf.common import _torch_version, interleaved, median, paired_ratio
from bench.perf.harness import (
    SweepSetup,
    harness_final_losses,
    harness_program,
    mlp_sweep,
    resolve_strategy,
)
from bench.perf.mfu import bench_mfu_bound

# Targets: the harness's speed-up over each baseline, and auto against its best strategy.
VS_TORCH_LOOP = 5.0
VS_NAIVE_JAX = 2.0
VS_TORCH_FUNC = 1.3
VS_BEST_STRATEGY = 1.05  # harness auto within 5% of its best strategy
STRATEGIES = ("vmap", "chunked", "sequential")

# PyTorch's intra-op threads for the torch baselines. One thread is its fastest setting for
# these tiny matmuls, and with its default (one OpenMP thread a core) it spin-waits whenever
# the cores are shared: on the 2-core machine of FINDINGS.md, loaded by other jobs, a W=32
# step took 21-180 ms with 2 threads against 2.8 ms with 1. None = PyTorch's default.
TORCH_THREADS: int | None = 1


def baseline_callables(
    setup: SweepSetup, activation: str = "tanh", torch_threads: int | None = TORCH_THREADS
) -> dict[str, Callable]:
    """The baselines on this setup as no-argument callables returning final losses; the torch
    ones only when torch imports."""
    from bench import baselines

    args = (setup.layers, setup.x_train, setup.y_train, setup.lrs, setup.batch_idx, activation)
    out: dict[str, Callable] = {"naive_jax_loop": lambda: baselines.naive_jax_loop(*args)}
    if _torch_version() is not None:
        import torch

        def on_device(f: Callable) -> Callable:
            def call():
                with torch.device(torch_device()):  # the default device of torch factories
                    return f()

            return call

        out["torch_loop"] = on_device(lambda: baselines.torch_loop(*args, threads=torch_threads))
        out["torch_func_vmap"] = on_device(
            lambda: baselines.torch_func_vmap(*args, threads=torch_threads)
        )
    return out


def torch_device() -> str:
    """Where the PyTorch baselines run: "cuda" when JAX runs on a GPU and PyTorch sees one
    (the same GPU: one per machine here), else "cpu"."""
    import torch

    gpu = jax.devices()[0].platform == "gpu" and torch.cuda.is_available()
    return "cuda" if gpu else "cpu"


def _program_key(plan: tuple[str, int]) -> tuple[str, int]:
    """Plans that compile to the same program (lanes matter only when chunked)."""
    return (plan[0], plan[1] if plan[0] == "chunked" else 0)


def bench_sweep(
    n_configs: int,
    width: int,
    steps: int,
    rounds: int,
    activation: str = "tanh",
    peak: float | None = None,
    strategy_rounds: int = 9,
) -> dict[str, Any]:
    """Harness (auto + each strategy) vs the baselines, interleaved; ratios baseline/harness."""
    from bench import execute

    setup = mlp_sweep(n_configs=n_configs, width=width, steps=steps, activation=activation)
    fns: dict[str, Callable] = {}
    compile_s: dict[str, float] = {}
    resolved: dict[str, str] = {}
    lanes = max(1, n_configs // 4)
    plans = {s: resolve_strategy(setup, s, lanes) for s in STRATEGIES}
    plans["auto"] = resolve_strategy(setup, "auto", execute.MAX_LANES)
    programs: dict[tuple[str, int], str] = {}  # (strategy, chunk lanes) -> first way built
    for s, (strategy, k) in plans.items():
        key = _program_key((strategy, k))
        if key in programs:  # "auto" reuses the program of the strategy it resolves to
            fns[f"harness_{s}"], compile_s[s] = fns[f"harness_{programs[key]}"], 0.0
        else:
            fns[f"harness_{s}"], compile_s[s], _ = harness_program(setup, s, k)
            programs[key] = s
        resolved[s] = f"chunked ({k} lanes)" if strategy == "chunked" else strategy
    if jax.device_count() > 1:  # what the default buys: the same program on one device
        fns["harness_auto_1device"], compile_s["auto_1device"], resolved["auto_1device"] = (
            harness_program(setup, "auto", None, jax.devices()[:1])
        )
    fns.update(baseline_callables(setup, activation))
    # One untimed round (jit caches of the naive loop, torch's first-call setup) and a check
    # that every way trained the same thing.
    n = len(setup.configs)
    losses = {
        k: (harness_final_losses(f(), n) if k.startswith("harness") else np.asarray(f()))
        for k, f in fns.items()
    }
    ref = losses["harness_auto"]
    agree = {k: float(np.max(np.abs(v - ref))) for k, v in losses.items()}
    t = interleaved(fns, rounds, warmup=0)
    med = {k: median(v) for k, v in t.items()}
    ratio = {k: paired_ratio(t[k], t["harness_auto"]) for k in t}  # > 1: harness faster
    # auto against its alternatives: only the distinct programs, more rounds (the strategies
    # differ by a few percent, less than 3 rounds on a shared machine can resolve)
    distinct = {f"harness_{way}": fns[f"harness_{way}"] for way in programs.values()}
    t_s = interleaved(distinct, strategy_rounds, warmup=0)
    med_s = {k: median(v) for k, v in t_s.items()}
    auto_key = "harness_" + programs[_program_key(plans["auto"])]
    bound = bench_mfu_bound(setup, med_s[auto_key], rounds, peak) if peak else None
    return {
        "mfu_bound": bound,
        "n_configs": n,
        "width": width,
        "depth": setup.static.depth,
        "steps": steps,
        "batch": setup.static.batch_size,
        "rounds": rounds,
        "auto_resolves_to": resolved["auto"],
        "median_s": med,
        "speedup_of_harness_auto": ratio,
        # paired per-round ratio against the program with the best median, as every other
        # ratio here: load that drifts between rounds cancels
        "auto_vs_best_strategy": paired_ratio(
            t_s[auto_key], t_s[min(med_s, key=lambda k: med_s[k])]
        ),
        "strategy_rounds": strategy_rounds,
        "strategy_median_s": med_s,
        "strategy_times_s": t_s,
        "compile_s": compile_s,
        "max_abs_loss_diff_vs_harness": agree,
        "final_loss_range": [float(np.nanmin(ref)), float(np.nanmax(ref))],
        "model_flops": setup.model_flops,
        "model_flop_per_s_auto": setup.model_flops / med["harness_auto"],
    }


def bench_gpu_vmap(n_configs: int, steps: int, rounds: int) -> dict[str, Any]:
    """GPU acceptance: >= 256 small configurations, vmap vs one after another (sequential)."""
    setup = mlp_sweep(n_configs=n_configs, width=32, steps=steps)
    rv, _, _ = harness_program(setup, "vmap")
    rs, _, _ = harness_program(setup, "sequential")
    t = interleaved({"vmap": rv, "sequential": rs}, rounds)
    return {
        "n_configs": n_configs,
        "steps": steps,
        "median_s": {k: median(v) for k, v in t.items()},
        "speedup_vmap_over_sequential": paired_ratio(t["sequential"], t["vmap"]),
    }

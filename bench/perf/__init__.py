"""Performance report: side-by-side ratios against jax.nn, a naive JAX loop and PyTorch.

``python -m bench perf [--out DIR] [--quick | --gpu | --tiny]`` (or ``python -m bench.perf``)
measures, in one process, with repetitions interleaved and medians of k (``common``), each
family in its own module, returning plain data:

1. the device's fp32 matmul peak, ``jit(a @ b)`` (``common.matmul_peak``);
2. every registered activation against jax.nn, jitted forward+backward: time ratio and
   residual bytes (``activations``);
3. the small-MLP sweep: the harness (``auto`` and each strategy) against a naive JAX loop, a
   PyTorch loop and torch.func vmap, training the same networks (``sweeps``, on ``harness``);
4. model-FLOP utilisation of the harness at width >= 256 (``mfu``);
5. compile time of the harness program at depth 4, 50 and 200 (``compile_time``);
6. a small CNN, the harness against one configuration after another, and its MFU (``cnn``);
7. early exit against the full budget (``early_exit``).

It writes ``<out>/<device-slug>/REPORT.md`` (``render``) and ``perf.json`` (atomically) and
prints the report. Every target is reported as PASS or MISS with the measured number; nothing
is adjusted to pass.

GPU: ``python -m bench perf --gpu --out results/perf`` uses the GPU settings: activations at
2^24 and 2^27 elements; 256 small configurations, the harness's vmap against its one after
another (sequential) program and against the PyTorch baselines on the same GPU; MFU at widths
1024 and 2048 and of a (32, 32, 64)-channel CNN against the measured float32 (default
precision, TF32 where allowed), full-float32 and bfloat16 matmul peaks.
``scripts/gpu-check.sh`` runs it with the GPU tests and the faithful relu-vs-tanh
reproduction in one time-boxed job. ``--tiny`` runs every section in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax

from bench.perf import cnn, early_exit, startup, sweeps
from bench.perf.activations import (
    ACT_TIME_TARGET,
    activation_inputs,
    activation_pair,
    bench_activations,
    fwd_bwd_program,
    fwd_program,
    memory_stats,
    residual_bytes,
)
from bench.perf.cnn import bench_cnn
from bench.perf.common import (
    MATMUL_VARIANTS,
    _torch_version,
    block,
    device_slug,
    interleaved,
    machine,
    matmul_peak,
    median,
    paired_ratio,
)
from bench.perf.compile_time import COMPILE_TARGET, bench_compile
from bench.perf.harness import (
    SweepSetup,
    harness_final_losses,
    harness_program,
    mlp_sweep,
    resolve_strategy,
)
from bench.perf.mfu import MFU_TARGET, bench_mfu, matmul_only_program, traced_model_flops
from bench.perf.render import render
from bench.perf.sweeps import (
    VS_BEST_STRATEGY,
    VS_NAIVE_JAX,
    VS_TORCH_FUNC,
    VS_TORCH_LOOP,
    baseline_callables,
    bench_gpu_vmap,
    bench_sweep,
    torch_device,
)

# What other code (tests/benchmarks, tests/test_gpu_check.py, bench/gpu_check.py) uses as
# ``perf.NAME``; each is defined in the module of its family.
__all__ = [
    "ACT_TIME_TARGET",
    "COMPILE_TARGET",
    "GPU",
    "MFU_TARGET",
    "QUICK",
    "TINY",
    "VS_BEST_STRATEGY",
    "VS_NAIVE_JAX",
    "VS_TORCH_FUNC",
    "VS_TORCH_LOOP",
    "Settings",
    "SweepSetup",
    "activation_inputs",
    "activation_pair",
    "baseline_callables",
    "bench_cnn",
    "block",
    "fwd_bwd_program",
    "fwd_program",
    "harness_final_losses",
    "harness_program",
    "interleaved",
    "main",
    "matmul_only_program",
    "matmul_peak",
    "median",
    "memory_stats",
    "mlp_sweep",
    "paired_ratio",
    "render",
    "residual_bytes",
    "resolve_strategy",
    "run",
    "traced_model_flops",
    "write",
]


@dataclasses.dataclass(frozen=True)
class Settings:
    act_sizes: tuple[int, ...] = (1 << 20, 1 << 24)
    act_rounds: int = 201  # at 2^20; scaled down by size (act_rounds_for)
    act_names: tuple[str, ...] = ()  # () = every registered activation
    sweep_n: int = 32
    sweep_widths: tuple[int, ...] = (32, 64)
    sweep_steps: int = 100
    sweep_rounds: int = 3
    mfu_widths: tuple[int, ...] = (256, 512)
    mfu_n: int = 4
    mfu_steps: int = 100
    compile_depths: tuple[int, ...] = (4, 50, 200)
    compile_rounds: int = 2
    cnn_n: int = 4
    cnn_steps: int = 20
    cnn_channels: tuple[int, ...] = (8, 16)
    # the CNN against PyTorch (bench.perf.cnn): image shapes x channel sets, one configuration;
    # then N configurations at cnn_torch_shapes[0] and cnn_group_channels; () skips
    cnn_torch_shapes: tuple[tuple[int, ...], ...] = ((28, 28, 1), (32, 32, 3))
    cnn_torch_channels: tuple[tuple[int, ...], ...] = ((8, 8, 16), (16, 16, 32), (32, 32, 64))
    cnn_torch_steps: int = 10
    cnn_torch_rounds: int = 5
    cnn_group_n: int = 8
    cnn_group_channels: tuple[tuple[int, ...], ...] = ((16, 16, 32), (32, 32, 64))
    cnn_group_steps: int = 5
    cnn_group_rounds: int = 3
    # first and second run of a whole sweep with fresh disk caches (bench.perf.startup)
    startup_config: str = "bench/configs/quick.toml"  # "": skip
    startup_sets: tuple[str, ...] = ()
    gpu_vmap_n: int = 0  # 0: skip
    strategy_rounds: int = 9  # extra rounds of the distinct harness programs (bench_sweep)
    matmul_sizes: tuple[int, ...] = (1024, 2048)
    matmul_variants: tuple[str, ...] = ()  # extra peaks, keys of MATMUL_VARIANTS
    # early exit vs the full budget (bench.perf.early_exit): steps the fast configuration
    # needs (the budget is 8x that), repetitions, and spec overrides (tiny sizes)
    early_exit_needed: int = 450
    early_exit_rounds: int = 3
    early_exit_spec: tuple[tuple[str, Any], ...] = ()


QUICK = Settings(
    act_sizes=(1 << 20,),
    act_rounds=21,
    sweep_widths=(32,),
    sweep_steps=100,
    sweep_rounds=2,
    mfu_widths=(256,),
    mfu_steps=50,
    compile_rounds=1,
    cnn_n=2,
    cnn_steps=10,
)
# Sized for about 3 minutes on one H200 (bench/gpu_check.py gives it 190 s): the PyTorch
# loop and the harness's sequential strategy run 256 x sweep_steps steps one after another, at
# a few kernel launches each, so the sweep runs one width for 50 steps; the harness's vmap and
# sequential programs are rows of that sweep (no separate gpu_vmap section).
GPU = Settings(
    act_sizes=(1 << 24, 1 << 27),
    sweep_n=256,
    sweep_widths=(32,),
    sweep_steps=50,
    strategy_rounds=3,
    mfu_widths=(1024, 2048),
    mfu_n=16,
    mfu_steps=200,
    compile_rounds=1,
    cnn_n=16,
    cnn_steps=200,
    cnn_channels=(32, 32, 64),
    cnn_torch_shapes=(),  # the PyTorch CNN rows and the start-up runs are CPU measurements
    cnn_group_channels=(),
    startup_config="",
    matmul_sizes=(4096, 8192),
    matmul_variants=("float32_highest", "bfloat16"),
)
# Seconds on a CPU: every section runs, at sizes too small to mean anything (the GPU check's
# dry run, so the GPU settings' code paths cannot rot between GPU sessions).
TINY = Settings(
    act_sizes=(1 << 12,),
    act_names=("identity", "tanh"),
    act_rounds=3,
    sweep_n=4,
    sweep_widths=(8,),
    sweep_steps=4,
    sweep_rounds=1,
    strategy_rounds=1,
    mfu_widths=(8,),  # the sweep's program again: loaded from the compilation cache
    mfu_n=4,
    mfu_steps=4,
    compile_depths=(2,),
    compile_rounds=1,
    cnn_n=2,
    cnn_steps=4,
    cnn_channels=(4,),
    cnn_torch_shapes=((8, 8, 1),),
    cnn_torch_channels=((2, 2, 4),),
    cnn_torch_steps=2,
    cnn_torch_rounds=1,
    cnn_group_n=2,
    cnn_group_channels=((2, 2, 4),),
    cnn_group_steps=2,
    cnn_group_rounds=1,
    startup_sets=("steps=50", "seed=[0]", "lr=[0.5]", "tuning_seeds=[1000]", "lr_extensions=0"),
    matmul_sizes=(64,),
    matmul_variants=("bfloat16",),
    early_exit_needed=10,
    early_exit_rounds=1,
    early_exit_spec=(
        ("dataset", "teacher-student"),
        ("data", {"n_train": 256, "n_test": 32, "input_dim": 8, "num_classes": 4}),
        ("width", 8),
        ("eval_every", 5),
        ("eval_size", 64),
        ("target", 0.5),
        ("seed", [0, 1]),
    ),
)


def run(
    settings: Settings,
    log: Callable[[str], None] = print,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every measurement of the report, in one process. ``checkpoint(res)`` is called after
    each section (the CLI saves the partial perf.json, so a killed run keeps what it had)."""
    t_start = time.perf_counter()
    res: dict[str, Any] = {"machine": machine(), "settings": dataclasses.asdict(settings)}
    res["torch_threads"] = sweeps.TORCH_THREADS
    res["torch_device"] = torch_device() if _torch_version() is not None else None
    from bench import results

    res["git_commit"], res["git_dirty"] = results.git_info()
    save = checkpoint or (lambda _: None)
    res["started_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    log("matmul peak ...")
    res["matmul"] = matmul_peak(settings.matmul_sizes)
    peak = res["matmul"]["peak"]
    log(f"  {peak / 1e9:.1f} GFLOP/s")
    res["matmul_variants"] = {}
    for name in settings.matmul_variants:
        dtype, precision = MATMUL_VARIANTS[name]
        res["matmul_variants"][name] = matmul_peak(settings.matmul_sizes, 5, dtype, precision)
        log(f"  {name}: {res['matmul_variants'][name]['peak'] / 1e9:.1f} GFLOP/s")
    peaks = {"float32": peak} | {k: v["peak"] for k, v in res["matmul_variants"].items()}
    res["activations"] = bench_activations(
        settings.act_sizes, settings.act_names, settings.act_rounds, log
    )
    save(res)
    res["sweeps"] = []
    for w in settings.sweep_widths:
        log(f"sweep N={settings.sweep_n} W={w} ...")
        res["sweeps"].append(
            bench_sweep(
                settings.sweep_n,
                w,
                settings.sweep_steps,
                settings.sweep_rounds,
                peak=peak,
                strategy_rounds=settings.strategy_rounds,
            )
        )
        save(res)
    res["mfu"] = []
    for w in settings.mfu_widths:
        log(f"MFU W={w} ...")
        res["mfu"].append(bench_mfu(w, settings.mfu_n, settings.mfu_steps, 3, peak, peaks))
        save(res)
    log("compile time ...")
    res["compile"] = bench_compile(settings.compile_depths, settings.compile_rounds)
    save(res)
    log("CNN ...")
    res["cnn"] = bench_cnn(settings.cnn_n, settings.cnn_steps, 3, settings.cnn_channels, peaks)
    if settings.cnn_torch_shapes:
        log("CNN vs PyTorch ...")
        res["cnn_vs_torch"] = cnn.bench_cnn_vs_torch(
            settings.cnn_torch_shapes,
            settings.cnn_torch_channels,
            settings.cnn_torch_steps,
            settings.cnn_torch_rounds,
        )
        save(res)
    if settings.cnn_torch_shapes and settings.cnn_group_channels:
        log("CNN convolutions layer by layer ...")
        res["cnn_conv_layers"] = cnn.bench_conv_layers(
            settings.cnn_torch_shapes[0], settings.cnn_group_channels[-1], settings.cnn_torch_rounds
        )
        log(f"CNN groups of {settings.cnn_group_n} ...")
        res["cnn_groups"] = cnn.bench_cnn_group(
            settings.cnn_torch_shapes[0],
            settings.cnn_group_channels,
            settings.cnn_group_n,
            settings.cnn_group_steps,
            settings.cnn_group_rounds,
        )
        save(res)
    if settings.startup_config:
        log("start-up: first and second sweep ...")
        res["startup"] = startup.measure(settings.startup_config, settings.startup_sets)
        save(res)
    log("early exit vs the full budget ...")
    res["early_exit"] = early_exit.measure(
        settings.early_exit_needed,
        rounds=settings.early_exit_rounds,
        spec=dict(settings.early_exit_spec),
    )
    save(res)
    if settings.gpu_vmap_n:
        log("GPU vmap ...")
        res["gpu_vmap"] = bench_gpu_vmap(settings.gpu_vmap_n, settings.sweep_steps, 3)
    res["wall_s"] = time.perf_counter() - t_start
    return res


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write(res: Mapping[str, Any], out: str | os.PathLike) -> Path:
    """Write ``<out>/<device-slug>/REPORT.md`` and ``perf.json``; returns the folder."""
    folder = Path(out) / device_slug(res["machine"])
    _atomic_write(folder / "perf.json", json.dumps(res, indent=1, sort_keys=True))
    _atomic_write(folder / "REPORT.md", render(res))
    return folder


# --------------------------------------------------------------------------- CLI


def _arguments(p: argparse.ArgumentParser) -> None:
    from bench import cli

    p.add_argument("--out", default="results/perf", help="report root (default results/perf)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds")
    g.add_argument("--gpu", action="store_true", help="GPU acceptance settings")
    g.add_argument("--tiny", action="store_true", help="seconds on a CPU (tests; not a result)")
    p.add_argument(
        "--torch-threads",
        type=cli.at_least(0),
        default=1,
        metavar="N",
        help="torch.set_num_threads for the PyTorch baselines (default 1; 0: PyTorch's default)",
    )


def main(args: argparse.Namespace) -> int:
    settings = QUICK if args.quick else GPU if args.gpu else TINY if args.tiny else Settings()
    sweeps.TORCH_THREADS = args.torch_threads or None
    # Compile times are measured here: a program loaded from the persistent cache that every
    # python -m bench command turns on would time a file read instead.
    jax.config.update("jax_enable_compilation_cache", False)
    folder = Path(args.out) / device_slug()

    def checkpoint(res: dict[str, Any]) -> None:
        _atomic_write(folder / "perf.partial.json", json.dumps(res, indent=1, sort_keys=True))

    res = run(settings, checkpoint=checkpoint)
    folder = write(res, args.out)
    (folder / "perf.partial.json").unlink(missing_ok=True)
    print(render(res))
    print(f"wrote {folder / 'REPORT.md'} and {folder / 'perf.json'}")
    return 0


def _register() -> None:
    from bench import cli

    cli.register(
        "perf", "side-by-side performance report (ratios vs jax.nn, JAX, PyTorch)", _arguments, main
    )


_register()

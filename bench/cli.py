"""Command line: ``python -m bench <command> ...``.

Built in: ``sweep CONFIG.toml [--out DIR] [--set key=value ...]`` and ``report RUN_DIR``.
Another module adds a command by calling ``register`` at import time and listing itself in
``COMMAND_MODULES`` (a module listed there that does not exist yet is skipped)::

    def _add(p):  p.add_argument("depth", type=int)
    def _run(args):  ...; return 0
    cli.register("attenuation", "measure gradient attenuation", _add, _run)
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

COMMAND_MODULES = ("bench.attenuation", "bench.perf", "bench.reproduce")


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


_COMMANDS: dict[str, Command] = {}


def register(
    name: str,
    help: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int | None],
) -> None:
    """Add a subcommand ``python -m bench NAME``."""
    _COMMANDS[name] = Command(help, add_arguments, run)


def add_distributed_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("multi-host (jax.distributed)")
    g.add_argument("--coordinator", metavar="ADDR", help="coordinator host:port (process 0)")
    g.add_argument("--num-processes", type=int, metavar="N")
    g.add_argument("--process-id", type=int, metavar="I")


def init_distributed(args: argparse.Namespace) -> None:
    """``jax.distributed.initialize`` when --coordinator is given (before any JAX call)."""
    if not getattr(args, "coordinator", None):
        return
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU cross-process ops
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
    )


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_cpu_devices(n: int | None) -> int | None:
    """Expose the CPU as ``n`` JAX devices (None: one per usable core) before JAX starts.

    XLA runs the small kernels of a training step on one thread, so on a CPU the harness only
    uses every core when each core is a JAX device: ``bench.execute`` shards the configuration
    axis over the devices. Left alone when the environment already chooses the count
    (``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``, or ``JAX_NUM_CPU_DEVICES``)
    or, for the default, when JAX has already started in this process (a library caller's
    choice stands). Returns the count set, or None when it was left alone.
    """
    import jax

    if n is not None and n < 1:
        raise ValueError(f"--cpu-devices: need at least 1, got {n}")
    chosen = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
    if n is None and (chosen or "JAX_NUM_CPU_DEVICES" in os.environ):
        return None
    count = n if n is not None else usable_cores()
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX already initialised its backends in this process
        if n is not None and jax.local_device_count("cpu") != n:
            raise ValueError(
                f"--cpu-devices {n}: JAX already started in this process with "
                f"{jax.local_device_count('cpu')} CPU device(s); set it before any JAX call"
            ) from None
        return None
    return count


def _add_sweep(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="sweep TOML file, e.g. bench/configs/quick.toml")
    p.add_argument("--out", default="results", help="results root (default: results)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key; the value is parsed as TOML (repeatable)",
    )
    p.add_argument("--no-report", action="store_true", help="skip the summary at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_distributed_arguments(p)


def _run_sweep(args: argparse.Namespace) -> int:
    from bench import config

    try:  # configuration errors: one line naming the key, before anything compiles
        cfg = config.load(args.config, args.overrides)
        config.validate_data(cfg)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    init_distributed(args)
    from bench import sweep

    run_dir = sweep.run_sweep(cfg, args.out, progress=not args.quiet, report=not args.no_report)
    print(run_dir)
    return 0


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory results/<experiment>/<run-id>")


def _run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.sweep import print_report

    print_report(Path(args.run_dir))
    return 0


register("sweep", "run (or resume) a sweep from a TOML file", _add_sweep, _run_sweep)
register("report", "rebuild tables and figures of a run directory", _add_report, _run_report)


def _load_command_modules() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # a real import error inside an existing module
                raise


def parser() -> argparse.ArgumentParser:
    _load_command_modules()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in _COMMANDS.items():
        sp = sub.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(sp)
        sp.add_argument(
            "--cpu-devices",
            type=int,
            metavar="N",
            help="JAX devices the CPU is split into (default: one per usable core); the "
            "configurations are sharded over them",
        )
        sp.set_defaults(_run=cmd.run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        configure_cpu_devices(args.cpu_devices)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from bench import cache

    cache.enable_compilation_cache()
    return int(args._run(args) or 0)

"""Command line: ``python -m bench <command> ...``.

Built in: ``sweep CONFIG.toml [--out DIR] [--set key=value ...]`` and ``report RUN_DIR``.
Another module adds a command by calling ``register`` at import time and listing itself in
``COMMAND_MODULES`` (a module listed there that does not exist yet is skipped)::

    def _add(p):  p.add_argument("depth", type=int)
    def _run(args):  ...; return 0
    cli.register("attenuation", "measure gradient attenuation", _add, _run)

Errors. Bad input (``bench.errors.UsageError``: an unknown or impossible config key or value,
a missing or malformed file, an ``--out`` that cannot be written, a bad argument) ends the
command with one line on stderr, ``error: SUBJECT: PROBLEM; WHAT TO DO``, and exit status 2,
before anything is trained or written; ``--debug`` (anywhere on the command line) shows the
traceback instead. Any other exception is a bug and keeps its traceback. Before a command
runs, an ``--out`` argument must name a directory that exists and is writable or can be
created, and an ``--activation`` argument a registered activation (an alias such as 'swish'
becomes its canonical name); a command's ``check`` (see ``register``) validates the rest
before JAX starts, and the built-in commands import JAX only once their input is valid.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from bench.errors import UsageError, did_you_mean

COMMAND_MODULES = ("bench.attenuation", "bench.perf", "bench.reproduce")


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    # Validates the arguments before JAX starts (raising UsageError); may store what it
    # parsed on the namespace for ``run``.
    check: Callable[[argparse.Namespace], None] | None = None
    # False for a command that never uses JAX: it then does not wait for JAX to start.
    uses_jax: bool = True


_COMMANDS: dict[str, Command] = {}


def register(
    name: str,
    help: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int | None],
    check: Callable[[argparse.Namespace], None] | None = None,
    uses_jax: bool = True,
) -> None:
    """Add a subcommand ``python -m bench NAME`` (``check``, ``uses_jax``: see ``Command``)."""
    _COMMANDS[name] = Command(help, add_arguments, run, check, uses_jax)


def at_least(minimum: float, kind: type = int) -> Callable[[str], Any]:
    """An argparse ``type``: a finite ``kind`` (int or float) >= minimum, so that a bad value
    fails as one line naming the option before the command starts."""

    def convert(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(v) and v >= minimum):
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text}")
        return v

    return convert


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
    if n is not None and n < 1:
        raise UsageError(
            "--cpu-devices", f"need at least 1, got {n}", "use --cpu-devices 1 or more"
        )
    import jax

    chosen = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
    if n is None and (chosen or "JAX_NUM_CPU_DEVICES" in os.environ):
        return None
    count = n if n is not None else usable_cores()
    # set already (an earlier call): left alone. jax.config's options are dynamic attributes.
    if jax.config.jax_num_cpu_devices == count:  # type: ignore[attr-defined]
        return None
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX already initialised its backends in this process
        if n is not None and jax.local_device_count("cpu") != n:
            raise UsageError(
                f"--cpu-devices {n}",
                f"JAX already started in this process with "
                f"{jax.local_device_count('cpu')} CPU device(s)",
                "set it before any JAX call",
            ) from None
        return None
    return count


def check_out_dir(out: str | os.PathLike, option: str = "--out") -> None:
    """Raise UsageError now, not after hours of training, if ``out`` cannot be created or
    written (a path under a regular file, a read-only directory). Creates nothing."""
    path, subject = Path(out), f"{option} {out}"
    try:
        parent = path
        while not parent.exists():  # the nearest existing ancestor is where mkdir starts
            parent = parent.parent
        if not parent.is_dir():
            where = "is a file" if parent == path else f"is under '{parent}', a file"
            raise UsageError(subject, f"{where}, not a directory", f"choose another {option}")
        if not os.access(parent, os.W_OK | os.X_OK):
            what = "is not writable" if parent == path else f"cannot be created in '{parent}'"
            raise UsageError(subject, f"{what} (permission denied)", f"choose a writable {option}")
    except OSError as e:  # e.g. a name too long for the file system
        raise UsageError(subject, e.strerror or str(e), f"choose another {option}") from e


def _check_activation(args: argparse.Namespace) -> None:
    """A registered activation or alias -> its canonical name (imports the library and JAX)."""
    import activations

    try:
        args.activation = activations.info(args.activation).name
    except ValueError:
        hint = did_you_mean(args.activation, activations.names())
        raise UsageError("--activation", f"unknown activation {args.activation!r}", hint) from None


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


def _check_sweep(args: argparse.Namespace) -> None:
    from bench import config

    args.sweep_config = config.load(args.config, args.overrides)
    # Loading the data now (memoised for the sweep) also catches damaged files before any
    # file of the run is written.
    config.validate_data(args.sweep_config, full=True)


def _run_sweep(args: argparse.Namespace) -> int:
    init_distributed(args)
    from bench import sweep

    cfg = args.sweep_config
    kw: dict[str, Any] = {"progress": not args.quiet, "report": not args.no_report}
    if cfg.protocol == "tuned":  # tune the lr on tuning seeds, then measure on fresh ones
        from bench import protocol

        run_dir = protocol.run_protocol(cfg, args.out, **kw)
    else:
        run_dir = sweep.run_sweep(cfg, args.out, **kw)
    print(run_dir)
    return 0


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory results/<experiment>/<run-id>")


def _check_report(args: argparse.Namespace) -> None:
    # bench.summary says the same, but only after seconds of importing scipy; it also
    # rejects a directory without records.
    run = Path(args.run_dir)
    if not run.is_dir():
        hint = "give a run directory <out>/<experiment>/<run-id> that holds a sweep's records"
        raise UsageError("run_dir", f"'{run}' is not a directory", hint)
    if not os.access(run, os.W_OK | os.X_OK):
        raise UsageError(
            "run_dir",
            f"'{run}' is not writable (the report is written into it)",
            "fix its permissions, or copy the run directory elsewhere",
        )


def _run_report(args: argparse.Namespace) -> int:
    from bench import protocol, summary  # not bench.sweep.print_report: that would import JAX

    if protocol.is_protocol_dir(args.run_dir):  # a tuned sweep: one summary of its stages
        print(protocol.format_summary(protocol.write_report(Path(args.run_dir))))
        return 0
    s = summary.write_report(args.run_dir)
    print(summary.format_table(s))
    return 0


register("sweep", "run (or resume) a sweep from a TOML file", _add_sweep, _run_sweep, _check_sweep)
register(
    "report",
    "rebuild tables and figures of a run directory",
    _add_report,
    _run_report,
    _check_report,
    uses_jax=False,
)


def _load_command_modules(modules: Sequence[str] = COMMAND_MODULES) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # a real import error inside an existing module
                raise


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are UsageErrors (one line) instead of usage + exit."""

    def error(self, message: str):  # type: ignore[override]
        subject, problem, hint = self.prog, message, f"see '{self.prog} --help'"
        m = re.fullmatch(r"argument (\S+?)(?:/\S+)?: (.*)", message, re.S)
        if m:  # e.g. "argument --depth: invalid int value: 'x'"
            subject, problem = m[1], m[2]
        m = re.fullmatch(r"invalid choice: (.*?) \(choose from (.*)\)", problem, re.S)
        if m:
            word = m[1].strip("'\"")
            choices = [c.strip().strip("'\"") for c in m[2].split(",")]
            problem, hint = f"invalid choice {word!r}", did_you_mean(word, choices)
            if subject == "COMMAND":
                subject, problem = self.prog, f"unknown command {word!r}"
        raise UsageError(subject, problem, hint)


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser for ``command``: the command modules are imported unless it is
    built in, only its own module when one is named like it (``bench.perf`` for ``perf``), all
    of them otherwise. Some import JAX, which a failing command need not wait for."""
    if command not in _COMMANDS:
        own = [m for m in COMMAND_MODULES if m.rsplit(".", 1)[-1] == command]
        _load_command_modules(own)
        if command not in _COMMANDS:
            _load_command_modules()
    p = _Parser(prog="python -m bench", description=__doc__.split("\n")[0])
    debug_help = "show the traceback of an error instead of one line"
    p.add_argument("--debug", action="store_true", help=debug_help)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in _COMMANDS.items():
        sp = sub.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(sp)
        # SUPPRESS: an absent --debug after the command keeps the one given before it.
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
        sp.add_argument(
            "--cpu-devices",
            type=at_least(1),
            metavar="N",
            help="JAX devices the CPU is split into (default: one per usable core); the "
            "configurations are sharded over them",
        )
        sp.set_defaults(_command=cmd)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # a process of its own: SIGINT/SIGTERM stop it at once (bench.interrupt)
        from bench import interrupt

        interrupt.install()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except UsageError as e:  # bad input: one line; anything else is a bug and keeps its traceback
        if "--debug" in argv:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    command = next((a for a in argv if not a.startswith("-")), None)
    args, extra = parser(command).parse_known_args(argv)
    if extra:
        raise UsageError(
            extra[0], "unrecognized argument", f"see 'python -m bench {args.command} --help'"
        )
    cmd: Command = args._command
    # Bad input fails here, before JAX starts and before anything is written.
    if isinstance(getattr(args, "out", None), str):
        check_out_dir(args.out)
    if isinstance(getattr(args, "activation", None), str):
        _check_activation(args)
    if cmd.check is not None:
        cmd.check(args)
    if cmd.uses_jax:
        configure_cpu_devices(args.cpu_devices)
        from bench import cache

        cache.enable_compilation_cache()
    return int(cmd.run(args) or 0)

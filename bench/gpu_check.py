"""The GPU check: one time-boxed job for a GPU machine, and its dry run on a CPU.

``python -m bench.gpu_check run [--dry-run] [--out DIR] [--only STEP,...]`` (what
``scripts/gpu-check.sh`` calls) runs these steps, each in its own process under a time limit,
its output kept in a log:

- ``env``: Python, JAX, PyTorch and the devices they see (``nvidia-smi`` where there is one);
- ``tests``: ``pytest tests/gpu`` (marker ``gpu``: the harness's ``auto``, ``max_lanes``
  chunking and device mesh, and 16-bit activations on the device against float64 on the CPU)
  and ``tests/test_precision.py`` (every 16-bit input, bit-exact) on the GPU;
- ``perf``: ``python -m bench perf --gpu`` (``results/perf/<device>/``);
- ``repro``: ``python -m bench reproduce relu-vs-tanh --full`` on Fashion-MNIST, resuming the
  runs a previous check returned (``results/reproductions/relu-vs-tanh/gpu/runs``), so a claim
  too long for one job finishes over several; ``--repro-args`` passes more options.

After every step it packs everything into ``<out>/gpu-check.tar.gz`` (``MANIFEST.json``,
``logs/``, ``tests/junit.xml`` and the results tree) and writes ``<out>/gpu-check.log``, so a
job stopped from outside still returns what it finished. The GPU budgets add up to 7.5 minutes.

``--dry-run`` runs the same steps at tiny sizes on the CPU, in about a minute (``perf --tiny``,
``reproduce --tiny``, the tests on 2 CPU devices, the GPU-only ones skipped with their reason):
``tests/test_gpu_check.py`` runs it in CI, so the job cannot rot between GPU sessions.

``python -m bench.gpu_check unpack TARBALL`` (``scripts/gpu-unpack.sh``) places a returned
tarball: the perf report in ``results/perf/gpu-h200/``, each reproduction in
``results/reproductions/<claim>/gpu/``, the manifest, logs and test report in
``results/perf/gpu-h200/check/``. It refuses a dry run's tarball unless ``--allow-dry-run``.

Only the standard library is imported here: the job must run, and report, whatever a step
breaks.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARBALL = "gpu-check.tar.gz"
SUMMARY = "gpu-check.log"
ROOT = "gpu-check"  # the tarball's top folder
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # = bench.data.FASHION_MNIST_DIR
CARRIED_FASHION = ".data/fashion-mnist"  # scripts/gpu-prepare.sh copies the IDX files here
CLAIM = "relu-vs-tanh"
PERF_NAME = "gpu-h200"
MAX_TARBALL = 15 << 20  # the device tool returns files of at most 16 MiB
TEST_PATHS = ("tests/gpu", "tests/test_precision.py")
STEP_NAMES = ("env", "tests", "perf", "repro")

# Seconds per step. GPU: 20 + 90 + 190 + 170 = 470 s, under the 8 minutes the job may take
# (the device tool's command limit is 10). Dry run: liveness limits only, for a CI machine
# shared with other jobs (its steps need about 90 CPU seconds, two steps at a time).
BUDGET_S = {"env": 20, "tests": 90, "perf": 190, "repro": 170}
DRY_BUDGET_S = {"env": 120, "tests": 420, "perf": 420, "repro": 420}

# XLA CPU without its expensive optimisations: the dry run compiles dozens of tiny programs
# once each, and compile time is all it costs (semantics are unchanged).
FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
TWO_CPU_DEVICES = "--xla_force_host_platform_device_count=2"

ENV_SCRIPT = """
import platform, shutil, subprocess, sys
brief = sys.argv[1:] == ["brief"]  # the dry run: JAX alone
print("python", sys.version.replace(chr(10), " "), "on", platform.platform())
if shutil.which("nvidia-smi") and not brief:
    subprocess.run(["nvidia-smi"], check=False, timeout=15)
import jax
print("jax", jax.__version__, "backend", jax.default_backend(), "devices", jax.devices())
if not brief:
    try:
        import torch
        print("torch", torch.__version__, "cuda", torch.cuda.is_available())
    except ImportError:
        print("torch: not installed")
    try:
        import mnist1d
        print("mnist1d", getattr(mnist1d, "__version__", "?"), "from", mnist1d.__file__)
    except ImportError:
        print("mnist1d: not installed (perf needs it: carry its wheel, scripts/gpu-prepare.sh)")
"""

RENDER_PARTIAL = """
import json, sys
from pathlib import Path
from bench import perf
for partial in Path(sys.argv[1]).glob("*/perf.partial.json"):
    res = json.loads(partial.read_text())
    (partial.parent / "REPORT.md").write_text(perf.render(res))
    print("rendered the partial report", partial.parent / "REPORT.md")
"""


@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]
    timeout_s: float
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def code_digest(root: Path = REPO) -> str:
    """sha256 of the library's and the harness's Python sources (paths and bytes): names the
    code a GPU run measured when the machine's copy of the tree has no git history."""
    h = hashlib.sha256()
    for p in sorted(root.glob("activations/**/*.py")) + sorted(root.glob("bench/**/*.py")):
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def python_path() -> str:
    """The repository first (``python -m bench`` from the copied tree), then the caller's."""
    return os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)


def git_commit(root: Path = REPO) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


# --------------------------------------------------------------------------- the steps


def steps(
    work: Path, *, dry_run: bool, repro_args: Sequence[str] = (), python: str = sys.executable
) -> list[Step]:
    """The job's steps, writing under ``work`` (``results/``, ``tests/``)."""
    budget = DRY_BUDGET_S if dry_run else BUDGET_S
    results = work / "results"
    if dry_run:  # the CPU, forced even where a GPU is visible
        base = {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": FAST_COMPILE_FLAGS}
    else:  # JAX takes half the GPU's memory up front, PyTorch's baselines use the rest
        base = {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.5"}
    base = {**base, "PYTHONUNBUFFERED": "1"}
    tests_env = {**base, "XLA_FLAGS": f"{base.get('XLA_FLAGS', '')} {TWO_CPU_DEVICES}".strip()}
    if dry_run:
        tests_env["GPU_CHECK_DRY_RUN"] = "1"
        paths: list[str] = [TEST_PATHS[0]]
        marks = "gpu"
    else:  # the exactness battery is unmarked: select it too
        paths = [p for p in TEST_PATHS if (REPO / p).exists()]
        marks = "gpu or not slow"
    tests = (python, "-m", "pytest", *paths, "-m", marks, "-q", "-rs", "-p", "no:cacheprovider")
    tests += ("--junitxml", str(work / "tests" / "junit.xml"))
    size = ("--tiny", "--cpu-devices", "1") if dry_run else ("--gpu",)
    perf = (python, "-m", "bench", "perf", *size, "--out", str(results / "perf"))
    if dry_run:  # --tiny writes <out>/reproductions/<claim>/; moved to .../gpu/ afterwards
        repro_out, repro_size = work / "tiny", ("--tiny",)
    else:
        repro_out, repro_size = results, ("--full",)
    repro = (python, "-m", "bench", "reproduce", CLAIM, *repro_size, "--out", str(repro_out))
    return [
        Step(
            "env", (python, "-c", ENV_SCRIPT, *(["brief"] if dry_run else [])), budget["env"], base
        ),
        Step("tests", tests, budget["tests"], tests_env),
        Step("perf", perf, budget["perf"], base),
        Step("repro", (*repro, *repro_args), budget["repro"], base),
    ]


def run_step(step: Step, log: Path) -> dict[str, Any]:
    """Run one step in its own process group, output to ``log``; stopped (the whole group)
    after ``step.timeout_s``. Returns its manifest entry."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **step.env, "PYTHONPATH": python_path()}
    t0 = time.monotonic()
    timed_out = False
    with log.open("a") as f:  # after the notes of _before_repro
        f.write(f"$ {shlex.join(step.argv)}\n# env: {dict(step.env)}\n# limit {step.timeout_s} s\n")
        f.flush()
        p = subprocess.Popen(
            step.argv, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )
        status, usage = _wait(p.pid, t0 + step.timeout_s)
        if status is None:
            timed_out = True
            status, usage = _stop(p.pid)
            f.write(f"\n# stopped after {step.timeout_s} s\n")
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped by _wait, not by Popen
    return {
        "name": step.name,
        "command": shlex.join(step.argv),
        "env": dict(step.env),
        "timeout_s": step.timeout_s,
        "rc": p.returncode,
        "timed_out": timed_out,
        "seconds": round(time.monotonic() - t0, 1),
        # CPU seconds of the step's processes: on a loaded machine, what the step itself cost
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "log": f"logs/{log.name}",
    }


def _wait(pid: int, deadline: float | None) -> tuple[int | None, Any]:
    """(wait status, resource usage) of a child, or (None, None) at the deadline. ``wait4``
    rather than ``Popen.wait``: it reports the CPU time of this child (and its reaped
    children) alone, also when two steps run at once."""
    while True:
        done, status, usage = os.wait4(pid, 0 if deadline is None else os.WNOHANG)
        if done:
            return status, usage
        if deadline is not None and time.monotonic() >= deadline:
            return None, None
        time.sleep(0.1)


def _stop(pid: int) -> tuple[int, Any]:
    """SIGTERM to the step's process group, SIGKILL 10 s later."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        status, usage = _wait(pid, time.monotonic() + 10)
        if status is not None:
            return status, usage
    status, usage = _wait(pid, None)
    assert status is not None  # without a deadline wait4 blocks until the child exits
    return status, usage


def _before_repro(work: Path, dry_run: bool, fashion_dir: Path, log: Path) -> str | None:
    """Fashion-MNIST in its default directory, and the runs of an earlier check to resume;
    returns why the step cannot run, or None."""
    if dry_run:
        return None
    notes = []
    if not FASHION_MNIST_DIR.is_dir():
        if not fashion_dir.is_dir():
            return (
                f"no Fashion-MNIST: {FASHION_MNIST_DIR} and {fashion_dir} are missing "
                "(scripts/gpu-prepare.sh copies it into .data/fashion-mnist; carry '.data')"
            )
        try:  # a bare, disposable GPU machine: the reproduction reads the default directory
            FASHION_MNIST_DIR.parent.mkdir(parents=True, exist_ok=True)
            FASHION_MNIST_DIR.symlink_to(fashion_dir.resolve(), target_is_directory=True)
        except OSError as e:
            return f"cannot link {FASHION_MNIST_DIR} -> {fashion_dir}: {e}"
        notes.append(f"linked {FASHION_MNIST_DIR} -> {fashion_dir.resolve()}")
    earlier = REPO / "results" / "reproductions" / CLAIM / "gpu"
    if earlier.is_dir():
        dest = work / "results" / "reproductions" / CLAIM / "gpu"
        shutil.copytree(earlier, dest, dirs_exist_ok=True)
        notes.append(f"resuming from {earlier.relative_to(REPO)}")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"# {n}\n" for n in notes))
    return None


def _after(step: Step, work: Path, dry_run: bool, python: str) -> None:
    if step.name == "perf" and not any((work / "results" / "perf").glob("*/perf.json")):
        # stopped or failed: make the report of the sections it finished
        subprocess.run(
            [python, "-c", RENDER_PARTIAL, str(work / "results" / "perf")],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": python_path(), "JAX_PLATFORMS": "cpu"},
            timeout=120,
            check=False,
        )
    if step.name == "repro" and dry_run:
        src = work / "tiny" / "reproductions" / CLAIM
        if src.is_dir():
            dest = work / "results" / "reproductions" / CLAIM / "gpu"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(src, dest)


# --------------------------------------------------------------------------- packing


def pack(work: Path, out: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``<out>/gpu-check.tar.gz`` (atomically) from ``work`` and the manifest; if it is
    over the device tool's file limit, leave out the per-step curves, then the runs."""
    (work / "MANIFEST.json").write_text(json.dumps(manifest, indent=1))
    info: dict[str, Any] = {"left_out": None}
    for left_out in (None, "curves", "runs"):
        tmp = out / f".{TARBALL}.tmp"
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(work, arcname=ROOT, filter=_skip(left_out))
        if tmp.stat().st_size <= MAX_TARBALL or left_out == "runs":
            os.replace(tmp, out / TARBALL)
            info = {"left_out": left_out, "bytes": (out / TARBALL).stat().st_size}
            break
    return info


def _skip(folder: str | None):
    def keep(t: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if folder and f"/{folder}/" in f"/{t.name}/" and t.name.startswith(f"{ROOT}/results/"):
            return None
        return t

    return keep


def summary_text(manifest: Mapping[str, Any]) -> str:
    lines = [
        f"gpu-check {manifest['mode']} started {manifest['started_utc']}, "
        f"finished {manifest.get('finished_utc') or '(running)'}",
        f"code sha256 {manifest['code_digest'][:16]}, git {manifest.get('git_commit') or '-'}",
    ]
    for s in manifest["steps"]:
        state = "TIMEOUT" if s["timed_out"] else "ok" if s["rc"] == 0 else f"rc={s['rc']}"
        cpu = f"{s['cpu_s']:6.1f} s CPU" if "cpu_s" in s else ""
        lines.append(f"{s['name']:6s} {state:8s} {s['seconds']:7.1f} s {cpu}  ({s['log']})")
    return "\n".join(lines) + "\n"


def run(
    out: Path,
    *,
    dry_run: bool = False,
    only: Sequence[str] = STEP_NAMES,
    repro_args: Sequence[str] = (),
    fashion_dir: Path = REPO / CARRIED_FASHION,
    work: Path | None = None,
    python: str = sys.executable,
) -> dict[str, Any]:
    """The whole job; returns the manifest (also in the tarball)."""
    out.mkdir(parents=True, exist_ok=True)
    work = Path(work or tempfile.mkdtemp(prefix="gpu-check-"))
    manifest: dict[str, Any] = {
        "mode": "dry-run" if dry_run else "gpu",
        "started_utc": now(),
        "finished_utc": None,
        "host": platform.node(),
        "code_digest": code_digest(),
        "git_commit": git_commit(),
        "repro_args": list(repro_args),
        "steps": [],
    }
    todo = [
        step
        for step in steps(work, dry_run=dry_run, repro_args=repro_args, python=python)
        if step.name in only or step.name == "env"
    ]

    def one(step: Step) -> dict[str, Any]:
        log = work / "logs" / f"{step.name}.log"
        why = _before_repro(work, dry_run, fashion_dir, log) if step.name == "repro" else None
        if why:
            log.write_text(f"not run: {why}\n")
            entry = {"name": step.name, "command": shlex.join(step.argv), "rc": None}
            return {**entry, "timed_out": False, "seconds": 0.0, "log": f"logs/{log.name}"} | {
                "not_run": why
            }
        print(f"== {step.name} (limit {step.timeout_s:.0f} s): {shlex.join(step.argv)[:300]}")
        sys.stdout.flush()
        entry = run_step(step, log)
        _after(step, work, dry_run, python)
        return entry

    def done(entry: dict[str, Any]) -> None:
        manifest["steps"].append(entry)
        print(f"== {entry['name']} done: rc {entry['rc']}, {entry['seconds']} s")
        _tail(work / entry["log"])

    if dry_run:  # on 2 cores, two steps at a time: the dry run checks code paths, not speed
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            for f in concurrent.futures.as_completed([pool.submit(one, s) for s in todo]):
                done(f.result())
        manifest["steps"].sort(key=lambda e: STEP_NAMES.index(e["name"]))
    else:  # one after another, each packed at once: a job stopped from outside keeps it
        for step in todo:
            done(one(step))
            manifest["tarball"] = pack(work, out, manifest)
            (out / SUMMARY).write_text(summary_text(manifest))
    manifest["finished_utc"] = now()
    manifest["tarball"] = pack(work, out, manifest)
    (out / SUMMARY).write_text(summary_text(manifest))
    print(summary_text(manifest), end="")
    return manifest


def _tail(log: Path, lines: int = 25) -> None:
    """The end of a step's log on stdout: the device tool returns the end of the output."""
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    print("\n".join(f"   {line}" for line in text[-lines:]))
    sys.stdout.flush()


# --------------------------------------------------------------------------- unpacking


class UnpackError(ValueError):
    pass


def unpack(
    tarball: Path,
    results: Path = REPO / "results",
    *,
    perf_name: str = PERF_NAME,
    allow_dry_run: bool = False,
) -> list[Path]:
    """Place a returned tarball under ``results``; returns the folders written (each replaced
    as a whole; what the tarball lacks is left alone)."""
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(tarball) as tar:
            tar.extractall(tmp, filter="data")
        root = Path(tmp) / ROOT
        manifest = json.loads((root / "MANIFEST.json").read_text())
        if manifest["mode"] != "gpu" and not allow_dry_run:
            raise UnpackError(
                f"{tarball} is a {manifest['mode']} (CPU, tiny sizes), not a GPU measurement: "
                "pass --allow-dry-run to place it anyway"
            )
        manifest["unpacked_utc"] = now()
        local = code_digest()
        manifest["same_code_as_checkout"] = manifest["code_digest"] == local
        if manifest["same_code_as_checkout"] and not manifest.get("git_commit"):
            manifest["checkout_git_commit"] = git_commit()
        (root / "MANIFEST.json").write_text(json.dumps(manifest, indent=1))
        placed = []
        perf_dirs = sorted(p for p in (root / "results" / "perf").glob("*") if p.is_dir())
        if len(perf_dirs) > 1:
            raise UnpackError(f"{tarball}: more than one perf report: {perf_dirs}")
        perf_dest = results / "perf" / perf_name
        for src in perf_dirs:
            _replace(src, perf_dest)
            placed.append(perf_dest)
        for src in sorted((root / "results" / "reproductions").glob("*/gpu")):
            dest = results / "reproductions" / src.parent.name / "gpu"
            _replace(src, dest)
            placed.append(dest)
        check = perf_dest / "check"
        if check.exists():
            shutil.rmtree(check)
        check.mkdir(parents=True)
        for name in ("MANIFEST.json", "logs", "tests"):
            src = root / name
            if src.is_dir():
                shutil.copytree(src, check / name)
            elif src.exists():
                shutil.copy2(src, check / name)
        placed.append(check)
    return placed


def _replace(src: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest)


# --------------------------------------------------------------------------- command line


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.gpu_check", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the GPU check (or its --dry-run) and pack the results")
    r.add_argument(
        "--out",
        default=os.environ.get("OUT"),
        help="where the tarball and the summary go (default: $OUT, the device tool's folder)",
    )
    r.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (CI)")
    r.add_argument(
        "--only",
        default=",".join(STEP_NAMES),
        help=f"comma-separated steps to run, of {', '.join(STEP_NAMES)} (env always runs)",
    )
    r.add_argument(
        "--repro-args",
        default="",
        help="more options for `python -m bench reproduce`, one string (shell quoting)",
    )
    r.add_argument(
        "--fashion-dir",
        default=os.environ.get("GPU_CHECK_FASHION_DIR", str(REPO / CARRIED_FASHION)),
        help="Fashion-MNIST IDX files, linked to the default directory when that is missing "
        f"(default: $GPU_CHECK_FASHION_DIR or {CARRIED_FASHION})",
    )
    r.add_argument("--work", help="working folder (default: a new temporary one)")
    u = sub.add_parser("unpack", help="place a returned tarball under results/")
    u.add_argument("tarball")
    u.add_argument("--results", default=str(REPO / "results"), help="results root")
    u.add_argument("--perf-name", default=PERF_NAME, help=f"perf folder (default {PERF_NAME})")
    u.add_argument("--allow-dry-run", action="store_true", help="place a dry run's tarball too")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "unpack":
        try:
            placed = unpack(
                Path(args.tarball),
                Path(args.results),
                perf_name=args.perf_name,
                allow_dry_run=args.allow_dry_run,
            )
        except UnpackError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for p in placed:
            print(f"placed {p}")
        return 0
    if not args.out:
        print("error: --out: give a folder (or set $OUT)", file=sys.stderr)
        return 2
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(STEP_NAMES))
    if unknown:
        print(f"error: --only: unknown step {unknown[0]!r}; valid: {STEP_NAMES}", file=sys.stderr)
        return 2
    manifest = run(
        Path(args.out),
        dry_run=args.dry_run,
        only=only,
        repro_args=shlex.split(args.repro_args),
        fashion_dir=Path(args.fashion_dir),
        work=Path(args.work) if args.work else None,
    )
    return 0 if all(s["rc"] == 0 for s in manifest["steps"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())

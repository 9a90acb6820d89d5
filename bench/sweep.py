"""Run a sweep: groups -> one compiled program each -> records and curves, resumable.

The run directory is ``<out>/<experiment>/<run-id>`` with a run id that depends only on the
resolved config (``SweepConfig.run_id``), so rerunning the same command resumes: groups whose
curves and records are on disk are skipped. A run stopped by Ctrl-C or SIGTERM stops within a
second (``bench.interrupt``), and one killed with SIGKILL at any moment loses only the group in
flight (see ``bench.results`` for why the files are never half-written).

Multi-host: every process expands the same grid and runs every group together (the config axis
is sharded over all devices, ``bench.execute``); results are gathered to every process and only
process 0 writes files.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import jax
import numpy as np

from bench import execute, interrupt, results
from bench.config import GroupStatic, SweepConfig, expand, validate_data
from bench.train import diag_steps, eval_steps


class Group:
    """One static setting, its id and its configurations (each with a global config id)."""

    def __init__(
        self, index: int, static: GroupStatic, configs: list[dict[str, Any]], first_config: int
    ):
        self.static = static
        self.configs = configs
        shape = (
            f"d{static.depth}w{static.width}"
            if static.model == "mlp"
            else "c" + "x".join(map(str, static.channels or ()))
        )
        self.id = f"g{index:03d}-{static.activation}-{static.model}-{shape}"
        self.config_ids = [f"c{first_config + j:05d}" for j in range(len(configs))]


def groups(cfg: SweepConfig) -> list[Group]:
    out, n = [], 0
    for i, (static, configs) in enumerate(expand(cfg)):
        out.append(Group(i, static, configs, n))
        n += len(configs)
    return out


def config_record(cfg: SweepConfig, group: Group, j: int) -> dict[str, Any]:
    """The config keys of one configuration, as stored in its record."""
    s, d = group.static, group.configs[j]
    return {
        "experiment": cfg.experiment,
        "group": group.id,
        "config_id": group.config_ids[j],
        "dataset": s.dataset,
        "model": s.model,
        "activation": s.activation,
        "depth": s.depth,
        "width": s.width,
        "channels": list(s.channels) if s.channels else None,
        "optimizer": s.optimizer,
        "batch_size": s.batch_size,
        "steps": s.steps,
        "eval_every": s.eval_every,
        "eval_size": s.eval_size,
        "target": cfg.target,
        "init": s.init,
        **d,
    }


def make_records(
    cfg: SweepConfig, group: Group, metrics: dict[str, np.ndarray], git_commit: str | None
) -> list[dict[str, Any]]:
    steps = eval_steps(group.static)
    out = []
    for j in range(len(group.configs)):
        ev = metrics["eval_error"][j]
        hit = np.flatnonzero(ev <= cfg.target)  # NaN (after divergence) compares False
        diverged = bool(metrics["diverged"][j])
        finite = ev[np.isfinite(ev)]
        # With early exit a lane stops before the budget: its last values are where it stopped.
        trained = int(metrics["steps_trained"][j]) if "steps_trained" in metrics else None
        last_eval = -1 if trained is None else trained // group.static.eval_every
        last_step = -1 if trained is None else max(trained - 1, 0)
        out.append(
            {
                **config_record(cfg, group, j),
                "steps_to_target": int(steps[hit[0]]) if hit.size else None,
                "reached": bool(hit.size),
                "final_train_error": results.clean_float(ev[last_eval]),
                "final_minibatch_loss": results.clean_float(metrics["loss"][j, last_step]),
                "min_train_error": results.clean_float(finite.min()) if finite.size else None,
                "diverged": diverged,
                "divergence_step": int(metrics["divergence_step"][j]) if diverged else None,
                "status": "diverged" if diverged else "done",
                **({} if trained is None else {"steps_trained": trained}),
                **{k: results.clean_float(metrics[k][j]) for k in HELD_OUT if k in metrics},
                "git_commit": git_commit,
                **diag_record(group.static, metrics, j),
            }
        )
    return out


def diag_record(static: GroupStatic, metrics: dict[str, np.ndarray], j: int) -> dict[str, Any]:
    """``init_<metric>`` and ``final_<metric>`` of configuration j: lists of L floats (null for
    NaN) at the first diagnostic point and at the last one before divergence (or the end)."""
    if not static.diagnostics:
        return {}
    from bench.diagnostics import METRICS

    steps = diag_steps(static)
    last = len(steps) - 1
    if metrics["diverged"][j]:  # points after the diverging step read NaN
        last = int(np.flatnonzero(steps <= metrics["divergence_step"][j])[-1])
    out: dict[str, Any] = {}
    for when, d in (("init", 0), ("final", last)):
        for m in METRICS:
            out[f"{when}_{m}"] = [results.clean_float(v) for v in metrics[f"diag_{m}"][j, d]]
    return out


# Scalars per configuration: in the records, not the curves.
HELD_OUT = ("test_error", "test_error_at_target", "val_error", "val_error_at_target")
PER_LANE = ("diverged", "divergence_step", "steps_trained", *HELD_OUT)


def curves(group: Group, metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The curves file of a group: the agreed arrays, plus any extra stacked metric (e.g. a
    probe's per-layer diagnostics) under its own name."""
    extra = {k: v for k, v in metrics.items() if k not in PER_LANE}
    if group.static.diagnostics:  # diag_<metric> (N, D, L) are among the extra metrics
        extra["diag_steps"] = diag_steps(group.static)
    return {
        **extra,
        "config_ids": np.array(group.config_ids),
        "eval_steps": eval_steps(group.static),
    }


def run_dir_for(cfg: SweepConfig, out: str | Path) -> Path:
    return Path(out) / cfg.experiment / cfg.run_id()


def _load_data(cfg: SweepConfig, name: str) -> tuple[execute.TrainData, int]:
    from bench import data

    ds = data.load(name, data_dir=cfg.data_dir, **cfg.data)
    n_train = len(ds.x_train) - cfg.val_size
    if cfg.eval_size > n_train:
        held = f" ({cfg.val_size} held out for validation)" if cfg.val_size else ""
        raise ValueError(
            f"eval_size: {cfg.eval_size} exceeds the {n_train} training examples of {name}{held}"
        )
    arrays = execute.train_data(
        ds.x_train, ds.y_train, cfg.eval_size, ds.x_test, ds.y_test, cfg.val_size
    )
    return arrays, int(ds.num_classes)


def run_sweep(
    cfg: SweepConfig,
    out: str | Path = "results",
    *,
    progress: bool = True,
    log: TextIO | None = None,
    report: bool = True,
    group_filter: Callable[[Group], bool] | None = None,
    probe: execute.Probe | None = None,
) -> Path:
    """Run (or resume) a sweep; returns its run directory.

    ``progress``: on a terminal, a bar of training steps that moves with every evaluation
    chunk; otherwise one plain line per group (``log``, default stderr). ``probe(params,
    grads) -> dict`` adds per-step metrics (saved in the curves files).

    Each group's program runs on a worker thread (``bench.interrupt.call``), so an interruption
    (Ctrl-C, or SIGTERM under ``bench.interrupt.install``) is seen at once: the finished groups
    stay, meta.json says ``"status": "interrupted"`` and when, and one line on stderr says how
    to resume. A group's files are written with the signal held back, so a group that
    finished is kept.
    """
    log = log if log is not None else sys.stderr
    validate_data(cfg)  # before anything loads or compiles
    all_groups = groups(cfg)
    run_dir = run_dir_for(cfg, out)
    writer = jax.process_index() == 0
    meta: dict[str, Any] = {}
    try:
        _run(cfg, run_dir, all_groups, meta, progress and writer, log, group_filter, probe)
        if writer and report:
            print_report(run_dir)
    except BaseException as e:
        if not interrupt.is_interruption(e):
            raise
        _interrupted(e, run_dir, all_groups, meta if writer else None)
        interrupt.leave(e)
    return run_dir


def _run(
    cfg: SweepConfig,
    run_dir: Path,
    all_groups: list[Group],
    meta: dict[str, Any],
    show: bool,
    log: TextIO,
    group_filter: Callable[[Group], bool] | None,
    probe: execute.Probe | None,
) -> None:
    """run_sweep's work; ``meta`` is filled in place (the interruption path writes it)."""
    writer = jax.process_index() == 0
    done = results.finished_groups(run_dir)
    if jax.process_count() > 1:  # everyone has read the same state before anyone writes
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("bench-sweep-start")
    pending = [g for g in all_groups if g.id not in done and (not group_filter or group_filter(g))]

    env = results.environment()
    meta_path = run_dir / "meta.json"
    before = results.read_json(meta_path) if meta_path.exists() else {}
    meta.update(before)
    # The environment on top says who created the run; a resume that runs groups appends its
    # own (each group's entry and record also name their commit), and one that finds nothing
    # to run changes nothing, so a finished run keeps the commit that produced it.
    if not before:
        meta.update(env)
    elif pending:
        meta.setdefault("resumed", []).append({"at": results.now(), **env})
    meta.setdefault("created", results.now())
    meta.setdefault("groups", {})
    meta.update(
        status="incomplete" if pending else meta.get("status", "incomplete"),
        config_hash=cfg.config_hash(),
        run_id=cfg.run_id(),
        experiment=cfg.experiment,
    )
    if writer:
        with interrupt.deferred():
            results.write_json(run_dir / "config.json", cfg.resolved())
            results.write_json(meta_path, meta)

    n_total = sum(len(g.configs) for g in all_groups)
    print(
        f"run {run_dir}: {len(all_groups)} groups, {n_total} configurations, "
        f"{len(all_groups) - len(pending)} groups already done",
        file=log,
    )
    shown = _Progress(all_groups, pending, log, show)
    mesh = execute.config_mesh()
    datasets: dict[str, tuple[execute.TrainData, int]] = {}
    try:
        for g in pending:
            name = g.static.dataset
            if name not in datasets:
                datasets[name] = _load_data(cfg, name)
            data, num_classes = datasets[name]
            shown.start(g)
            metrics, timing = interrupt.call(
                execute.run_group,
                g.static,
                g.configs,
                data,
                num_classes,
                strategy=cfg.strategy,
                max_lanes=cfg.max_lanes,
                mesh=mesh,
                probe=probe,
                progress=shown.tick if shown.bar is not None else None,
                poll=shown.poll,
            )
            if writer:  # curves, then records (the group is then finished), then its timing
                with interrupt.deferred():
                    results.write_curves(run_dir, g.id, curves(g, metrics))
                    results.append_records(
                        run_dir, make_records(cfg, g, metrics, env["git_commit"])
                    )
                    meta["groups"][g.id] = {
                        **timing,
                        "finished": results.now(),
                        "git_commit": env["git_commit"],
                    }
                    results.write_json(meta_path, meta)
            shown.finish(g, timing)
    finally:
        shown.close()

    if writer:
        recs = results.read_records(run_dir)
        meta["status"] = "diverged" if recs and all(r["diverged"] for r in recs) else "done"
        if len(recs) < n_total:
            meta["status"] = "incomplete"  # a group_filter left some out
        results.write_json(meta_path, meta)


def _interrupted(
    e: BaseException, run_dir: Path, all_groups: list[Group], meta: dict | None
) -> None:
    """Mark the run interrupted (once its meta.json exists) and say how to resume."""
    kept = len(results.finished_groups(run_dir))
    if meta and (run_dir / "meta.json").exists() and kept < len(all_groups):
        meta.update(status="interrupted", interrupted=results.now())
        results.write_json(run_dir / "meta.json", meta)
    name = e.signal_name if isinstance(e, interrupt.Interrupted) else "SIGINT"
    interrupt.report(
        f"interrupted by {name}: {kept} of {len(all_groups)} groups kept in {run_dir}; "
        f"resume with: {interrupt.command_line()}"
    )


def print_report(run_dir: Path, log: TextIO | None = None) -> dict[str, Any]:
    """bench.summary's report files for a run directory, and its table on ``log`` (stdout)."""
    from bench import summary

    s = summary.write_report(run_dir)
    print(summary.format_table(s), file=log if log is not None else sys.stdout)
    return s


def _fmt_s(s: float) -> str:
    s = round(s)
    return f"{s // 60:d}:{s % 60:02d}"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class _Progress:
    """What a sweep shows as it goes, in training steps (configurations x steps).

    On a terminal, a tqdm bar that moves with every evaluation chunk (``tick``, called from
    the group program's host callback thread, only counts; ``poll``, on the main thread,
    moves the bar) and whose ETA is the average rate since the start (compiles included);
    elsewhere one plain line per group with no carriage return; nothing when disabled.
    """

    def __init__(self, all_groups: list[Group], pending: list[Group], log: TextIO, show: bool):
        def work(g: Group) -> int:
            return len(g.configs) * g.static.steps

        self.log, self.show = log, show
        self.total = sum(work(g) for g in all_groups)
        self.left = sum(work(g) for g in pending)
        self.groups_left = len(pending)
        self.t0 = time.monotonic()
        self.done_here = 0  # steps finished by this process
        self.bar = None
        if show and _isatty(log):
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.total,
                initial=self.total - self.left,
                unit="step",
                unit_scale=True,
                smoothing=0,
                dynamic_ncols=True,
                file=log,
            )
        self._lock = threading.Lock()
        self._chunks = 0  # configuration-chunks of the current group, from the callback
        self._shown = 0  # of them already on the bar
        self._every = 1

    def start(self, g: Group) -> None:
        with self._lock:
            self._chunks = self._shown = 0
        self._every = g.static.eval_every
        if self.bar is not None:
            self.bar.set_description(g.id)

    def tick(self, n: int) -> None:
        with self._lock:
            self._chunks += n

    def poll(self) -> None:
        if self.bar is None:
            return
        with self._lock:
            new, self._shown = self._chunks - self._shown, self._chunks
        if new:
            self.bar.update(new * self._every)

    def finish(self, g: Group, timing: dict[str, Any]) -> None:
        work = len(g.configs) * g.static.steps
        self.done_here += work
        self.left -= work
        self.groups_left -= 1
        if self.bar is not None:  # exactly the group's steps, whatever the callbacks said
            self.bar.update(work - self._shown * self._every)
        if not self.show:
            return
        eta = (time.monotonic() - self.t0) / self.done_here * self.left
        line = (
            f"{g.id}: {len(g.configs)} configs, {timing['strategy']}, compile "
            f"{timing['compile_s']:.1f} s, run {timing['run_s']:.1f} s; ETA "
            f"{_fmt_s(eta)} for {self.groups_left} more groups"
        )
        if self.bar is not None:
            self.bar.write(line, file=self.log)
        else:
            print(line, file=self.log, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


__all__: Sequence[str] = ["Group", "groups", "make_records", "run_dir_for", "run_sweep"]

"""Run a sweep: groups -> one compiled program each -> records and curves, resumable.

The run directory is ``<out>/<experiment>/<run-id>`` with a run id that depends only on the
resolved config (``SweepConfig.run_id``), so rerunning the same command resumes: groups whose
curves and records are on disk are skipped, and a run killed with SIGKILL loses only the group
in flight (see ``bench.results`` for why the files are never half-written).

Multi-host: every process expands the same grid and runs every group together (the config axis
is sharded over all devices, ``bench.execute``); results are gathered to every process and only
process 0 writes files.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import jax
import numpy as np

from bench import execute, results
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
        out.append(
            {
                **config_record(cfg, group, j),
                "steps_to_target": int(steps[hit[0]]) if hit.size else None,
                "reached": bool(hit.size),
                "final_train_error": results.clean_float(ev[-1]),
                "final_minibatch_loss": results.clean_float(metrics["loss"][j, -1]),
                "min_train_error": results.clean_float(finite.min()) if finite.size else None,
                "diverged": diverged,
                "divergence_step": int(metrics["divergence_step"][j]) if diverged else None,
                "status": "diverged" if diverged else "done",
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


PER_LANE = ("diverged", "divergence_step")  # scalars per configuration: in the records


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
    if cfg.eval_size > len(ds.x_train):
        raise ValueError(
            f"eval_size: {cfg.eval_size} exceeds the {len(ds.x_train)} training examples of {name}"
        )
    return execute.train_data(ds.x_train, ds.y_train, cfg.eval_size), int(ds.num_classes)


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

    ``probe(params, grads) -> dict`` adds per-step metrics (saved in the curves files).
    """
    log = log if log is not None else sys.stderr
    validate_data(cfg)  # before anything loads or compiles
    all_groups = groups(cfg)
    run_dir = run_dir_for(cfg, out)
    writer = jax.process_index() == 0
    multi = jax.process_count() > 1

    done = results.finished_groups(run_dir)
    if multi:  # everyone has read the same state before anyone writes
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("bench-sweep-start")
    pending = [g for g in all_groups if g.id not in done and (not group_filter or group_filter(g))]

    env = results.environment()
    meta_path = run_dir / "meta.json"
    meta: dict[str, Any] = results.read_json(meta_path) if meta_path.exists() else {}
    meta.update(env)
    meta.setdefault("created", results.now())
    meta.setdefault("groups", {})
    meta.update(
        status="incomplete" if pending else meta.get("status", "incomplete"),
        config_hash=cfg.config_hash(),
        run_id=cfg.run_id(),
        experiment=cfg.experiment,
    )
    if writer:
        results.write_json(run_dir / "config.json", cfg.resolved())
        results.write_json(meta_path, meta)

    n_total = sum(len(g.configs) for g in all_groups)
    n_pending = sum(len(g.configs) for g in pending)
    print(
        f"run {run_dir}: {len(all_groups)} groups, {n_total} configurations, "
        f"{len(all_groups) - len(pending)} groups already done",
        file=log,
    )
    bar = _progress(n_total, n_total - n_pending, progress and writer)
    mesh = execute.config_mesh()
    datasets: dict[str, tuple[execute.TrainData, int]] = {}
    spent: list[float] = []
    for i, g in enumerate(pending):
        name = g.static.dataset
        if name not in datasets:
            datasets[name] = _load_data(cfg, name)
        data, num_classes = datasets[name]
        bar.set_description(g.id)
        metrics, timing = execute.run_group(
            g.static,
            g.configs,
            data,
            num_classes,
            strategy=cfg.strategy,
            max_lanes=cfg.max_lanes,
            mesh=mesh,
            probe=probe,
        )
        if writer:
            results.write_curves(run_dir, g.id, curves(g, metrics))
            results.append_records(run_dir, make_records(cfg, g, metrics, env["git_commit"]))
            meta["groups"][g.id] = {**timing, "finished": results.now()}
            results.write_json(meta_path, meta)
        spent.append(timing["compile_s"] + timing["run_s"])
        eta = np.mean(spent) * (len(pending) - i - 1)
        bar.update(len(g.configs))
        bar.write(
            f"{g.id}: {len(g.configs)} configs, {timing['strategy']}, compile "
            f"{timing['compile_s']:.1f} s, run {timing['run_s']:.1f} s; ETA "
            f"{_fmt_s(eta)} for {len(pending) - i - 1} more groups",
            file=log,
        )
    bar.close()

    if writer:
        recs = results.read_records(run_dir)
        meta["status"] = "diverged" if recs and all(r["diverged"] for r in recs) else "done"
        if len(recs) < n_total:
            meta["status"] = "incomplete"  # a group_filter left some out
        results.write_json(meta_path, meta)
        if report:
            print_report(run_dir)
    return run_dir


def print_report(run_dir: Path, log: TextIO | None = None) -> dict[str, Any]:
    """bench.summary's report files for a run directory, and its table on ``log`` (stdout)."""
    from bench import summary

    s = summary.write_report(run_dir)
    print(summary.format_table(s), file=log if log is not None else sys.stdout)
    return s


def _fmt_s(s: float) -> str:
    s = round(s)
    return f"{s // 60:d}:{s % 60:02d}"


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="cfg", disable=not enabled, dynamic_ncols=True)


__all__: Sequence[str] = ["Group", "groups", "make_records", "run_dir_for", "run_sweep"]

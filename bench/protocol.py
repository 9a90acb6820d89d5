"""The measurement protocol: tune the learning rate on tuning seeds, measure on fresh seeds.

A sweep with ``protocol = "tuned"`` runs in two stages, per *setting* (a static group with one
value of each dynamic axis other than ``lr`` and ``seed``: ``init_scale``, ``bias_init``,
``slope``):

1. **Tune.** The ``lr`` grid runs on ``tuning_seeds``. The best lr has the smallest
   Kaplan-Meier median steps to target over those seeds (``bench.stats``: runs that diverge or
   collapse count as never reaching it); among lrs whose median is not reached, the smaller
   median minimum training error is better. While the best lr is on an edge of the lrs tried,
   the grid grows by one lr in that direction (``lr_factor`` apart; by default the grid's own
   spacing at that end), so the search ends with the best lr *bracketed*: a larger lr that is
   slower, fails or diverges, and a smaller one that is slower. After ``lr_extensions``
   extensions in one direction it gives up, and the summary flags the bracket as open on that
   side: never silently.
2. **Measure.** The chosen lr runs on the measurement seeds (the ``seed`` axis, disjoint from
   the tuning seeds). Every statistic the summary reports comes from this stage alone, so
   the seeds that picked the winner do not also flatter it.

Each stage is an ordinary sweep (resumable, one compiled program per group; an extension
changes only the lr, a traced value, so with the same number of lanes it reuses the compiled
program). They live under ``<out>/<experiment>/<run-id>/stages/``; the protocol directory
itself holds ``records.jsonl`` (every run, with its ``stage`` and ``round``), ``summary.json``,
``summary.md`` and ``meta.json``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from bench import results, stats
from bench.config import DYNAMIC_AXES, GroupStatic, SweepConfig, expand

SETTING_AXES = tuple(k for k in DYNAMIC_AXES if k not in ("lr", "seed"))
ESTIMATOR = "Kaplan-Meier median steps to target; diverged and collapsed runs never reach it"


@dataclasses.dataclass(frozen=True)
class Setting:
    """What one learning rate is tuned for: a static group and its other dynamic values."""

    static: GroupStatic
    values: tuple[tuple[str, Any], ...]  # (axis, value) for SETTING_AXES

    def label(self, varying: frozenset[str] = frozenset(SETTING_AXES)) -> str:
        """activation, model and shape, plus the other fields named in ``varying``."""
        s = self.static
        shape = (
            f"d{s.depth}w{s.width}"
            if s.model == "mlp"
            else "c" + "x".join(map(str, s.channels or ()))
        )
        fields = self.fields()
        extra = "".join(
            f" {k}={fields[k]}" for k in fields if k in varying and k not in ("activation", "model")
        )
        return f"{s.activation} {s.model} {shape}{extra}"

    def fields(self) -> dict[str, Any]:
        s = self.static
        return {
            "dataset": s.dataset,
            "model": s.model,
            "activation": s.activation,
            "depth": s.depth,
            "width": s.width,
            "channels": list(s.channels) if s.channels else None,
            "init": s.init,
            "optimizer": s.optimizer,
            "batch_size": s.batch_size,
            "steps": s.steps,
            **dict(self.values),
        }


def varying(settings: Sequence[Setting]) -> frozenset[str]:
    """The fields that differ between settings (what a label must show)."""
    fields = [s.fields() for s in settings]
    return (
        frozenset(k for k in fields[0] if len({repr(f[k]) for f in fields}) > 1)
        if fields
        else frozenset()
    )


def settings(cfg: SweepConfig) -> list[Setting]:
    """The settings of a sweep, in the grid's order."""
    out: dict[Setting, None] = {}
    for static, configs in expand(cfg):
        for c in configs:
            out.setdefault(Setting(static, tuple((k, c[k]) for k in SETTING_AXES)))
    return list(out)


def stage_config(
    cfg: SweepConfig, setting: Setting, lrs: Sequence[float], seeds: Sequence[int], stage: str
) -> SweepConfig:
    """A plain sweep of one setting at ``lrs`` x ``seeds`` (experiment ``<experiment>-<stage>``)."""
    s = setting.static
    axes = dict(cfg.axes)
    axes.update(
        dataset=(s.dataset,),
        model=(s.model,),
        activation=(s.activation,),
        depth=(s.depth,),
        init=(s.init,),
        optimizer=(s.optimizer,),
        batch_size=(s.batch_size,),
        steps=(s.steps,),
        lr=tuple(float(v) for v in lrs),
        seed=tuple(int(v) for v in seeds),
    )
    if s.width is not None:
        axes["width"] = (s.width,)
    if s.channels is not None:
        axes["channels"] = (s.channels,)
    for k, v in setting.values:
        axes[k] = (v,)
    return dataclasses.replace(
        cfg, experiment=f"{cfg.experiment}-{stage}", axes=axes, protocol="grid"
    )


# --------------------------------------------------------------------------- lr search (pure)


COLLAPSED_ERROR = 1.0  # above any error of a run that learned, below a diverged run's +inf


def lr_score(records: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """(KM median steps to target, median minimum training error) of one lr's runs: smaller is
    better, compared in that order. Failed runs count as never reaching the target; a
    collapsed run (stuck at chance) as an error of 1, a diverged one as +inf, so that where no
    lr learns the search settles on the largest lr that does not blow up (a larger one that
    diverges closes the bracket) instead of climbing through diverging lrs."""
    sample = stats.sample(records)
    median = stats.km_median(sample.time, sample.event) if records else math.inf
    errs = [
        math.inf
        if o == "diverged" or r.get("min_train_error") is None
        else COLLAPSED_ERROR
        if o == "collapsed"
        else float(r["min_train_error"])
        for r, o in zip(records, sample.outcomes, strict=True)
    ]
    return median, float(np.median(errs)) if errs else math.inf


@dataclasses.dataclass(frozen=True)
class Bracket:
    best: float
    lrs: tuple[float, ...]  # every lr tried, ascending
    closed_below: bool  # a smaller lr was tried (and is not better)
    closed_above: bool

    @property
    def closed(self) -> bool:
        return self.closed_below and self.closed_above

    @property
    def interval(self) -> tuple[float | None, float | None]:
        """The tried neighbours of the best lr (None on an open side)."""
        i = self.lrs.index(self.best)
        lo = self.lrs[i - 1] if i > 0 else None
        hi = self.lrs[i + 1] if i + 1 < len(self.lrs) else None
        return lo, hi


def bracket(scores: Mapping[float, tuple[float, float]]) -> Bracket:
    """The best lr of ``scores`` and whether it is interior to the lrs tried. Ties go to the
    larger lr (the same steps with a larger step size leave more room below)."""
    lrs = tuple(sorted(scores))
    best = min(lrs, key=lambda lr: (*scores[lr], -lr))
    i = lrs.index(best)
    return Bracket(best, lrs, closed_below=i > 0, closed_above=i + 1 < len(lrs))


def next_lr(
    b: Bracket, factor_below: float, factor_above: float, used: Mapping[str, int], limit: int
) -> tuple[str, float] | None:
    """The next lr to try (("above" | "below"), lr), or None when the bracket is closed or the
    open side has used up its ``limit`` extensions. Above is tried first."""
    if not b.closed_above and used.get("above", 0) < limit:
        return "above", _round(b.lrs[-1] * factor_above)
    if not b.closed_below and used.get("below", 0) < limit:
        return "below", _round(b.lrs[0] / factor_below)
    return None


def grid_factors(lrs: Sequence[float], default: float) -> tuple[float, float]:
    """(factor below, factor above): the grid's spacing at each end, ``default`` when set (> 0)
    or when the grid has a single lr."""
    g = sorted(lrs)
    if default > 0 or len(g) < 2:
        f = default if default > 0 else 2.0
        return f, f
    return g[1] / g[0], g[-1] / g[-2]


def _round(lr: float) -> float:
    return float(f"{lr:.6g}")  # 0.1 * 3.1623 -> 0.31623, not 0.31622776601683794


# --------------------------------------------------------------------------- running


def run_protocol(
    cfg: SweepConfig,
    out: str | Path = "results",
    *,
    progress: bool = True,
    log: TextIO | None = None,
    report: bool = True,
) -> Path:
    """Run (or resume) a tuned sweep; returns its protocol directory."""
    from bench.sweep import run_dir_for, run_sweep

    log = log if log is not None else sys.stderr
    root = run_dir_for(cfg, out)
    stages = root / "stages"
    env = results.environment()
    meta: dict[str, Any] = {
        **env,
        "created": results.now(),
        "status": "incomplete",
        "protocol": "tuned",
        "run_id": cfg.run_id(),
        "experiment": cfg.experiment,
    }
    results.write_json(root / "config.json", cfg.resolved())
    results.write_json(root / "meta.json", meta)

    def sweep(setting: Setting, lrs, seeds, stage: str, round_: int) -> list[dict[str, Any]]:
        sub = stage_config(cfg, setting, lrs, seeds, stage)
        run_dir = run_sweep(sub, stages, progress=progress, log=log, report=False)
        return [{**r, "stage": stage, "round": round_} for r in results.read_records(run_dir)]

    all_records: list[dict[str, Any]] = []
    chosen: list[tuple[Setting, Bracket, dict[str, int]]] = []
    todo = settings(cfg)
    keys = varying(todo)
    for setting in todo:
        print(f"tune {setting.label(keys)}: lr {list(cfg.axes['lr'])}", file=log)
        recs = sweep(setting, cfg.axes["lr"], cfg.tuning_seeds, "tune", 0)
        by_lr: dict[float, list[dict[str, Any]]] = {}
        for r in recs:
            by_lr.setdefault(float(r["lr"]), []).append(r)
        f_below, f_above = grid_factors(cfg.axes["lr"], cfg.lr_factor)
        used: dict[str, int] = {}
        while True:
            b = bracket({lr: lr_score(rs) for lr, rs in by_lr.items()})
            step = next_lr(b, f_below, f_above, used, cfg.lr_extensions)
            if step is None:
                break
            side, lr = step
            used[side] = used.get(side, 0) + 1
            print(
                f"tune {setting.label(keys)}: best lr {b.best} on the edge, trying {lr}", file=log
            )
            new = sweep(setting, [lr], cfg.tuning_seeds, "tune", sum(used.values()))
            by_lr[lr] = new
            recs += new
        all_records += recs
        chosen.append((setting, b, used))

    for setting, b, _ in chosen:
        print(
            f"measure {setting.label(keys)}: lr {b.best}, seeds {list(cfg.axes['seed'])}", file=log
        )
        all_records += sweep(setting, [b.best], cfg.axes["seed"], "measure", 0)

    results.atomic_write_text(
        root / "records.jsonl", "".join(results.to_json(r) + "\n" for r in all_records)
    )
    meta.update(status="done", finished=results.now())
    results.write_json(root / "meta.json", meta)
    s = write_report(root)
    if report:
        print(format_summary(s))
    return root


def is_protocol_dir(path: Path) -> bool:
    return (Path(path) / "stages").is_dir() and (Path(path) / "config.json").is_file()


def write_report(root: Path) -> dict[str, Any]:
    """Rebuild ``summary.json`` and ``summary.md`` of a protocol directory from its files
    (its config and records); returns the summary."""
    from bench import config

    cfg = config.parse(results.read_json(root / "config.json"))
    records = results.read_records(root)
    grid = cfg.axes["lr"]
    chosen = []
    for setting in settings(cfg):
        by_lr: dict[float, list[dict[str, Any]]] = {}
        for r in records:
            if r["stage"] == "tune" and _matches(r, setting):
                by_lr.setdefault(float(r["lr"]), []).append(r)
        if not by_lr:
            continue
        b = bracket({lr: lr_score(rs) for lr, rs in by_lr.items()})
        used = {
            "above": sum(lr > max(grid) for lr in by_lr),
            "below": sum(lr < min(grid) for lr in by_lr),
        }
        chosen.append((setting, b, {k: v for k, v in used.items() if v}))
    s = summarise(cfg, chosen, records)
    results.write_json(root / "summary.json", s)
    results.atomic_write_text(root / "summary.md", format_summary(s))
    return s


def load(root: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, records) of a finished protocol directory (``run_protocol``'s return value);
    every record carries its ``stage`` ("tune" or "measure") and ``round``."""
    root = Path(root)
    return results.read_json(root / "summary.json"), results.read_records(root)


# --------------------------------------------------------------------------- summary


def _matches(r: Mapping[str, Any], setting: Setting) -> bool:
    want = setting.fields()
    return all(r.get(k) == v for k, v in want.items())


def median_interval(
    sample: stats.Sample, n_boot: int = 2000, seed: int = 0
) -> list[float | None] | None:
    """Percentile-bootstrap 95% CI of the KM median over seeds (None ends: not reached)."""
    n = sample.time.size
    if n == 0:
        return None
    idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    boot = stats.km_median_batch(sample.time[idx], sample.event[idx])
    lo, hi = np.quantile(boot, [0.025, 0.975], method="lower")
    return [float(v) if math.isfinite(v) else None for v in (lo, hi)]


def _outcomes(sample: stats.Sample) -> dict[str, int]:
    return {o: sample.count(o) for o in stats.OUTCOMES}


def summarise(
    cfg: SweepConfig,
    chosen: Sequence[tuple[Setting, Bracket, Mapping[str, int]]],
    records: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The protocol's summary: per setting its lr search and its measurement, and the paired
    ratio of each setting to the one of the first activation that differs from it only in the
    activation."""
    rows = []
    keys = varying([c[0] for c in chosen])
    samples: dict[Setting, stats.Sample] = {}
    for setting, b, used in chosen:
        tune = [r for r in records if r["stage"] == "tune" and _matches(r, setting)]
        measure = [r for r in records if r["stage"] == "measure" and _matches(r, setting)]
        grid = []
        for lr in b.lrs:
            rs = [r for r in tune if float(r["lr"]) == lr]
            median, err = lr_score(rs)
            grid.append(
                {
                    "lr": lr,
                    "median_steps": median if math.isfinite(median) else None,
                    "median_min_error": err if math.isfinite(err) else None,
                    **_outcomes(stats.sample(rs)),
                }
            )
        sample = stats.sample(measure)
        samples[setting] = sample
        median = stats.km_median(sample.time, sample.event)
        lo, hi = b.interval
        rows.append(
            {
                **setting.fields(),
                "label": setting.label(keys),
                "lr": b.best,
                "bracket": {
                    "below": lo,
                    "above": hi,
                    "closed": b.closed,
                    "open_side": [
                        s
                        for s, c in (("below", b.closed_below), ("above", b.closed_above))
                        if not c
                    ],
                    "extensions": dict(used),
                },
                "tuning": grid,
                "median_steps": median if math.isfinite(median) else None,
                "median_ci": median_interval(sample),
                "n": int(sample.time.size),
                **_outcomes(sample),
            }
        )
    ratios = []
    first = cfg.axes["activation"][0]
    for setting in samples:
        if setting.static.activation == first:
            continue
        ref_static = dataclasses.replace(setting.static, activation=first)
        ref = Setting(ref_static, setting.values)
        if ref not in samples:
            continue
        r = stats.median_ratio(samples[setting], samples[ref])
        ratios.append({"numerator": setting.label(keys), "denominator": ref.label(keys), **r})
    measure = [r for r in records if r["stage"] == "measure"]
    outs = [stats.outcome(r) for r in measure]
    return {
        "experiment": cfg.experiment,
        "target": cfg.target,
        "protocol": {
            "tuning_seeds": list(cfg.tuning_seeds),
            "measurement_seeds": list(cfg.axes["seed"]),
            "lr_grid": list(cfg.axes["lr"]),
            "lr_extensions": cfg.lr_extensions,
            "brackets_closed": sum(row["bracket"]["closed"] for row in rows),
            "brackets_open": [row["label"] for row in rows if not row["bracket"]["closed"]],
            "estimator": ESTIMATOR,
            "ci_method": f"seed bootstrap ({stats.DEFAULT_METHOD}), paired where seeds are shared",
            "n_measured": len(measure),
            "n_censored": outs.count("censored"),
            "n_failed": outs.count("diverged") + outs.count("collapsed"),
        },
        "settings": rows,
        "ratios": ratios,
    }


def _fmt(v: float | None, nd: int = 0) -> str:
    return "not reached" if v is None else f"{v:.{nd}f}"


def format_summary(s: Mapping[str, Any]) -> str:
    """Markdown tables of the tuning stage, the measurement stage and the ratios."""
    p = s["protocol"]
    lines = [
        f"# {s['experiment']}: tuned protocol, target {s['target']}",
        "",
        f"Tuning seeds {p['tuning_seeds']}; measurement seeds {p['measurement_seeds']}. "
        f"{p['estimator']}; CIs: {p['ci_method']}.",
        "",
        "## Tuning stage",
        "",
        "| setting | lrs tried | chosen lr | bracket |",
        "| --- | --- | --- | --- |",
    ]
    for row in s["settings"]:
        b = row["bracket"]
        state = (
            "closed"
            if b["closed"]
            else "OPEN " + "/".join(b["open_side"]) + " (edge of the search)"
        )
        tried = ", ".join(f"{g['lr']:g}: {_fmt(g['median_steps'])}" for g in row["tuning"])
        lines.append(f"| {row['label']} | {tried} | {row['lr']:g} | {state} |")
    lines += [
        "",
        "## Measurement stage",
        "",
        "| setting | lr | median steps [95% CI] | reached | censored | diverged | collapsed |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in s["settings"]:
        ci = row["median_ci"] or [None, None]
        lines.append(
            f"| {row['label']} | {row['lr']:g} | {_fmt(row['median_steps'])} "
            f"[{_fmt(ci[0])}, {_fmt(ci[1])}] | {row['reached']}/{row['n']} | {row['censored']} | "
            f"{row['diverged']} | {row['collapsed']} |"
        )
    if s["ratios"]:
        lines += ["", "## Ratios (median steps, numerator / denominator)", ""]
        lines += [
            "| numerator | denominator | ratio [95% CI] | paired |",
            "| --- | --- | --- | --- |",
        ]
        for r in s["ratios"]:
            ci = r["ci"] or [None, None]
            bound = "" if r["bound"] == "exact" else f" ({r['bound']} bound)"
            lines.append(
                f"| {r['numerator']} | {r['denominator']} | {_fmt(r['ratio'], 2)}{bound} "
                f"[{_fmt(ci[0], 2)}, {_fmt(ci[1], 2)}] | {'yes' if r['paired'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"

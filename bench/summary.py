"""Summaries of a sweep run: best learning rate per activation, speed ratios with bootstrap CIs.

A run directory ``results/<experiment>/<run-id>/`` holds ``meta.json``, the resolved config,
``records.jsonl`` (or ``records/<group>.jsonl``; one JSON object per trained configuration) and
``curves/<group>.npz``. ``write_report`` turns it into ``summary.json``, ``summary.md`` and
``curves.png``; runs with per-layer diagnostics (``diagnostics = true``, ``bench.diagnostics``)
also get a per-layer table in ``summary.md`` (per activation at its best lr, median over seeds of
``init_``/``final_`` grad_sq, dead, saturation and same-sign fractions; in summary.json under
each group's ``diagnostics``) and ``grad_norms.png`` (mean squared pre-activation gradient per
layer, one line per diagnostic step).

How the numbers are defined (``summarize``):

- A *setting* is one combination of the configuration keys in ``SETTING_KEYS`` (depth, width,
  model, init, target, ...) other than the ``by`` keys. Activations are compared within a
  setting only. ``lr`` is tuned and ``seed`` is replicated, so neither is a setting key.
- Steps to target of one run (``bench.stats``): an event at ``steps_to_target`` if the run
  reached the target and did not diverge; otherwise it did not reach the target within its
  budget: *censored* at the budget, or a *failure* (diverged, or collapsed: ended no better
  than chance), which can never reach it. Nothing is dropped; ``n_reached``, ``n_censored``
  and ``n_failed`` (``n_diverged`` + ``n_collapsed``) count them. ``steps_to_target`` lists
  the seeds' steps, None where not reached.
- Median steps: the Kaplan-Meier median over seeds (``bench.stats.km_median``); None ("not
  reached") when half or more of the seeds may not reach the target. With one budget for
  all runs it equals np.median over the steps with unreached runs at +inf.
- Best learning rate of an activation: the lowest median steps, unreached medians last. Ties:
  more seeds reached, then lower mean final error, then the smaller lr. ``best_lr_at_edge``
  says the optimum lies on the grid's boundary, i.e. the grid may be too narrow.
- Ratio ``a/b`` = median steps of a / median steps of b, each at its own best lr: > 1 means b is
  faster (Krizhevsky et al. 2012 report tanh/relu = 6). Its 95% CI (``bench.stats.median_ratio``)
  resamples seeds with replacement: paired (``paired``: both sides' runs of a drawn seed go
  together) when both sides ran the same seeds, independently otherwise; ``ci_method`` names
  the interval (percentile by default: its coverage came closest to 95% in simulation).
- Where a median is not reached, the median that counts each unreached run as reaching the
  target at its budget (``steps``) stands in for it: a lower bound of the true median. Hence
  ``bound``: "exact" (both medians observed), "lower" (the true ratio is at least the value:
  only the numerator is not reached), "upper" (only the denominator), "undetermined" (both;
  the value is None). ``ci_bound`` says the same of the CI ends, from whether a resample's
  median was replaced on each side.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import os
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import stats
from bench.errors import UsageError
from bench.results import atomic_write_bytes

__all__ = [
    "SETTING_KEYS",
    "format_table",
    "load_run",
    "summarize",
    "write_report",
]

# Configuration keys that define what is compared with what. Keys absent from the records are
# simply None for every record. A key missing here that varies would put two runs of the same
# (activation, lr, seed) into one setting; summarize detects that and names the key.
SETTING_KEYS = (
    "dataset",
    "model",
    "depth",
    "width",
    "channels",
    "init",
    "init_std",
    "init_scale",
    "bias_init",
    "optimizer",
    "momentum",
    "batch_size",
    "steps",
    "eval_every",
    "eval_size",
    "target",
    "loss_bound",
    "prelu_mode",
    "pool",
)
# Activation hyperparameters: part of the activation's label when they vary for one activation
# ("leaky_relu[slope=0.1]"), so relu (slope null) and leaky_relu still share a setting.
PARAM_KEYS = ("slope",)
# (numerator, denominator) of the named reference ratio: Krizhevsky et al. 2012's tanh/relu.
REFERENCE = ("tanh", "relu")


# --------------------------------------------------------------------------- loading


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:  # a run killed mid-write leaves a partial last line
                warnings.warn(f"{path}:{i + 1}: skipped a truncated last record", stacklevel=3)
                continue
            raise UsageError(
                "records", f"{path}:{i + 1} is not JSON: {e}", "delete or repair that line"
            ) from e
    return out


def load_run(
    run_dir: str | os.PathLike,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    """Read a run directory: (records, curves by config_id).

    ``curves[config_id]`` holds that configuration's row of every per-configuration array of
    its group's ``curves/<group>.npz`` (eval_error, minibatch_error, loss, ...) plus the
    group's shared ``eval_steps``.
    """
    run = Path(run_dir)
    hint = "give a run directory <out>/<experiment>/<run-id> that holds a sweep's records"
    if not run.is_dir():
        raise UsageError("run_dir", f"'{run}' is not a directory", hint)
    if (run / "records.jsonl").is_file():
        records = _read_jsonl(run / "records.jsonl")
    elif (run / "records").is_dir():
        files = sorted((run / "records").glob("*.jsonl"))
        records = [r for f in files for r in _read_jsonl(f)]
    else:
        raise UsageError("run_dir", f"'{run}' has no records.jsonl or records/*.jsonl", hint)

    curves: dict[str, dict[str, np.ndarray]] = {}
    for path in sorted((run / "curves").glob("*.npz")):
        with np.load(path, allow_pickle=False) as z:  # data only: never unpickle objects
            arrays = {k: z[k] for k in z.files}
        ids = arrays.pop("config_ids", None)
        if ids is None:
            raise UsageError(
                "curves", f"{path} has no 'config_ids' array", "delete it and rerun the sweep"
            )
        n = len(ids)
        shared = {
            k: a
            for k, a in arrays.items()
            if k in ("eval_steps", "diag_steps", "steps") or a.ndim == 0 or a.shape[0] != n
        }
        rows = {k: a for k, a in arrays.items() if k not in shared}
        for i, cid in enumerate(ids):
            curves[str(cid)] = {**shared, **{k: a[i] for k, a in rows.items()}}
    return records, curves


# --------------------------------------------------------------------------- statistics


def _freeze(v: Any) -> Any:
    return tuple(_freeze(x) for x in v) if isinstance(v, list | tuple) else v


def _matches(record: Mapping[str, Any], conditions: Mapping[str, Any] | None) -> bool:
    for k, want in (conditions or {}).items():
        v = _freeze(record.get(k))
        if isinstance(want, list | tuple | set | frozenset):
            if v not in {_freeze(w) for w in want}:
                return False
        elif v != _freeze(want):
            return False
    return True


def _steps(record: Mapping[str, Any]) -> float:
    """Steps to target, +inf when censored (never reached, or diverged)."""
    s = record.get("steps_to_target")
    if s is None or not record.get("reached", True) or record.get("diverged"):
        return math.inf
    return float(s)


def _budget(record: Mapping[str, Any], fallback: float) -> float:
    """The step budget a censored run is known to have exceeded (a lower bound on its time)."""
    b = record.get("steps")
    return float(b) if isinstance(b, int | float) and not isinstance(b, bool) else fallback


def _mean(values: Iterable[Any]) -> float | None:
    v = [float(x) for x in values if isinstance(x, int | float) and math.isfinite(x)]
    return float(np.mean(v)) if v else None


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None  # JSON has no inf/nan: None = censored


def _median(a: np.ndarray) -> float:
    return float(np.median(a)) if a.size else math.inf


def _lr_stats(
    runs: Sequence[Mapping[str, Any]], fallback: float, num_classes: int
) -> dict[str, Any]:
    vals = np.array([_steps(r) for r in runs])
    lower = np.array(
        [v if math.isfinite(v) else _budget(r, fallback) for v, r in zip(vals, runs, strict=True)]
    )
    # Unreached runs censored at their budget (``lower``), so that KM sees the real budget.
    smp = stats.sample([{**r, "steps": b} for r, b in zip(runs, lower, strict=True)], num_classes)
    return {
        "values": vals,
        "lower_values": lower,
        "sample": smp,
        "median": stats.km_median(smp.time, smp.event) if runs else math.inf,
        "n_reached": smp.count("reached"),
        "n_censored": smp.count("censored"),
        "n_seeds": len(runs),
        "n_diverged": smp.count("diverged"),
        "n_collapsed": smp.count("collapsed"),
        "mean_final_error": _mean(r.get("final_train_error") for r in runs),
        "mean_min_error": _mean(r.get("min_train_error") for r in runs),
    }


def _order(v: Any) -> tuple:
    """A total order over mixed JSON values (None < numbers < strings < lists)."""
    if v is None:
        return (0,)
    if isinstance(v, int | float) and not isinstance(v, bool):
        return (1, v)
    if isinstance(v, tuple):
        return (3, tuple(_order(x) for x in v))
    return (2, str(v))


def _rank(stats: Mapping[str, Any], lr: Any) -> tuple:
    fe = stats["mean_final_error"]
    return (stats["median"], -stats["n_reached"], math.inf if fe is None else fe, _order(lr))


def _group_summary(
    label: str, by_lr: Mapping[Any, Sequence[Mapping[str, Any]]], fallback: float, num_classes: int
) -> dict:
    per_lr = {lr: _lr_stats(runs, fallback, num_classes) for lr, runs in by_lr.items()}
    best = min(per_lr, key=lambda lr: _rank(per_lr[lr], lr))
    s = per_lr[best]
    runs = by_lr[best]
    grid = sorted(per_lr, key=_order)
    n_failed = s["n_diverged"] + s["n_collapsed"]
    return {
        "label": label,
        "best_lr": best,
        "lr_grid": grid,
        "best_lr_at_edge": len(grid) == 1 or best in (grid[0], grid[-1]),
        "median_steps": _num(s["median"]),
        "median_steps_lower": _num(_median(s["lower_values"])),
        "n_reached": s["n_reached"],
        "n_censored": s["n_censored"],
        "n_failed": n_failed,
        "n_diverged": s["n_diverged"],
        "n_collapsed": s["n_collapsed"],
        "failed_fraction": n_failed / s["n_seeds"] if s["n_seeds"] else None,
        "n_seeds": s["n_seeds"],
        "mean_final_error": s["mean_final_error"],
        "mean_min_error": s["mean_min_error"],
        "seeds": [r.get("seed") for r in runs],
        "steps_to_target": [_num(v) for v in s["values"]],
        "config_ids": [r.get("config_id") for r in runs],
        "by_lr": [
            {
                "lr": lr,
                "median_steps": _num(per_lr[lr]["median"]),
                "n_reached": per_lr[lr]["n_reached"],
                "n_seeds": per_lr[lr]["n_seeds"],
                "n_diverged": per_lr[lr]["n_diverged"],
                "mean_final_error": per_lr[lr]["mean_final_error"],
            }
            for lr in grid
        ],
        # Kept for the ratios, dropped before returning: not JSON.
        "_sample": s["sample"],
        **_diag_summary(runs),
    }


# Per-layer diagnostics shown in the summary (records' init_<m> / final_<m>, bench.diagnostics).
DIAG_SUMMARY = ("grad_sq", "dead_fraction", "saturation_fraction", "same_sign_fraction")


def _diag_summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"diagnostics": {init_<m>/final_<m>: per-layer median over seeds}}`` when the records
    carry diagnostics (null where every seed is NaN), else nothing."""
    out: dict[str, Any] = {}
    for when in ("init", "final"):
        for m in DIAG_SUMMARY:
            rows: list[Any] = [r.get(f"{when}_{m}") for r in runs]
            rows = [row for row in rows if isinstance(row, list) and row]
            if not rows or len({len(row) for row in rows}) != 1:
                continue
            a = np.array([[math.nan if v is None else v for v in row] for row in rows], np.float64)
            with warnings.catch_warnings():  # an all-NaN layer stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(a, axis=0)
            out[f"{when}_{m}"] = [_num(v) if math.isfinite(v) else None for v in med]
    return {"diagnostics": out} if out else {}


def _ratio(num: dict, den: dict, n_boot: int, seed: int, method: str) -> dict[str, Any]:
    """Ratio of median steps num/den at their best lrs, with a seed-bootstrap 95% CI."""
    # One stream per (pair, seed), independent of how many pairs there are.
    key = [seed, zlib.crc32(num["label"].encode()), zlib.crc32(den["label"].encode())]
    r = stats.median_ratio(
        num["_sample"], den["_sample"], n_boot=n_boot, rng=np.random.default_rng(key), method=method
    )
    return {"numerator": num["label"], "denominator": den["label"], **r}


def _speed_key(g: Mapping[str, Any]) -> tuple:
    m, lower = g["median_steps"], g["median_steps_lower"]
    inf = math.inf
    return (m is None, inf if m is None else m, inf if lower is None else lower, g["label"])


def summarize(
    records: Sequence[Mapping[str, Any]],
    *,
    by: Sequence[str] = ("activation",),
    conditions: Mapping[str, Any] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    reference: tuple[str, str] = REFERENCE,
    setting_keys: Sequence[str] = SETTING_KEYS,
    ci_method: str = stats.DEFAULT_METHOD,
    num_classes: int = 10,
) -> dict[str, Any]:
    """Best lr per ``by`` value within each setting, and ratios of steps to target.

    ``conditions`` keeps only records whose key equals the value (a list/tuple/set: any of
    them), e.g. ``{"depth": 16}``. ``reference`` is the (numerator, denominator) pair named in
    the summary and the table, and the denominator is the column the table compares with.
    ``setting_keys``: the configuration keys that separate settings (default ``SETTING_KEYS``).
    ``ci_method``: "percentile" or "bca" (``bench.stats``). ``num_classes``: the chance level
    that defines a collapsed run. Returns plain JSON data (see the module docstring for the
    definitions)::

        {"by", "reference", "conditions", "n_records", "n_boot", "seed",
         "settings": [{"setting": {key: value}, "groups": {label: {best_lr, median_steps,
                       n_reached, n_censored, n_failed, n_seeds, ...}} (fastest first),
                       "reference_label", "vs_reference": {label: ratio}, "pairs": [ratio],
                       "reference_pair": ratio | None}]}

    where a ratio is ``{numerator, denominator, ratio, bound, ci, ci_bound, ci_method,
    ci_by_method, paired, n_num, n_den}``.
    """
    by = tuple(by)
    for k in ("lr", "seed"):
        if k in by:
            raise ValueError(f"by: {k!r} cannot be a comparison key (lr is tuned, seed repeated)")
    if not by:
        raise ValueError("by: needs at least one key, e.g. ('activation',)")
    setting_keys = [k for k in setting_keys if k not in by]
    param_keys = [k for k in PARAM_KEYS if k not in by and k not in setting_keys]
    kept = [r for r in records if _matches(r, conditions)]

    # setting -> (by values, params) -> lr -> seed -> record
    tree: dict[tuple, dict[tuple, dict[Any, dict[Any, Mapping[str, Any]]]]] = {}
    for r in kept:
        setting = tuple(_freeze(r.get(k)) for k in setting_keys)
        group = (tuple(_freeze(r.get(k)) for k in by), tuple(r.get(k) for k in param_keys))
        seeds = tree.setdefault(setting, {}).setdefault(group, {}).setdefault(r.get("lr"), {})
        s = r.get("seed")
        if s in seeds:
            other = seeds[s]
            differ = sorted(k for k in set(r) | set(other) if other.get(k) != r.get(k))
            raise ValueError(
                f"records: two runs with {dict(zip(by, group[0], strict=True))}, "
                f"lr={r.get('lr')}, seed={s} in one setting; they differ in {differ}: "
                "pass that key in setting_keys or filter with conditions"
            )
        seeds[s] = r

    settings = []
    for setting in sorted(tree, key=_order):
        groups_in = tree[setting]
        # Fold a parameter into the label only where it varies for the same by-values.
        n_params: dict[tuple, int] = {}
        for byv, _ in groups_in:
            n_params[byv] = n_params.get(byv, 0) + 1
        fallback = max(
            (
                _steps(r)
                for lrs in groups_in.values()
                for seeds in lrs.values()
                for r in seeds.values()
                if math.isfinite(_steps(r))
            ),
            default=math.nan,
        )
        groups = []
        for (byv, params), lrs in groups_in.items():
            label = "/".join(str(v) for v in byv)
            if n_params[byv] > 1:
                kv = zip(param_keys, params, strict=True)
                label += "[" + ",".join(f"{k}={v}" for k, v in kv) + "]"
            by_lr = {lr: [seeds[s] for s in sorted(seeds, key=_order)] for lr, seeds in lrs.items()}
            groups.append(_group_summary(label, by_lr, fallback, num_classes))
        groups.sort(key=_speed_key)
        g = {x["label"]: x for x in groups}

        num, den = reference
        ref_label = den if den in g else groups[0]["label"]
        pairs = [
            _ratio(slow, fast, n_boot, seed, ci_method)
            for fast, slow in itertools.combinations(groups, 2)
        ]
        vs_ref = {
            lab: _ratio(x, g[ref_label], n_boot, seed, ci_method)
            for lab, x in g.items()
            if lab != ref_label
        }
        ref_pair = None
        if num in g and den in g:
            ref_pair = (
                vs_ref[num] if ref_label == den else _ratio(g[num], g[den], n_boot, seed, ci_method)
            )
        for x in groups:
            del x["_sample"]
        settings.append(
            {
                "setting": dict(zip(setting_keys, _unfreeze(setting), strict=True)),
                "groups": g,
                "reference_label": ref_label,
                "vs_reference": vs_ref,
                "pairs": pairs,
                "reference_pair": ref_pair,
            }
        )
    return {
        "by": list(by),
        "reference": list(reference),
        "conditions": _jsonable(dict(conditions or {})),
        "n_records": len(kept),
        "n_boot": n_boot,
        "seed": seed,
        "ci_method": ci_method,
        "settings": settings,
    }


def _unfreeze(v: Any) -> Any:
    return [_unfreeze(x) for x in v] if isinstance(v, tuple) else v


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


# --------------------------------------------------------------------------- formatting


def _fmt_num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _fmt_lr(lr: Any) -> str:
    return f"{lr:g}" if isinstance(lr, int | float) else str(lr)


def _fmt_r(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.2g}"


def _fmt_ratio(r: Mapping[str, Any] | None) -> str:
    """'6.00 [5.10, 7.20]' with >= / <= for bounds and '?' where censoring blurs both sides."""
    if r is None:
        return ""
    if r["ratio"] is None:
        text = "n/a (both censored)"
    else:
        text = {"exact": "", "lower": ">=", "upper": "<="}[r["bound"]] + _fmt_r(r["ratio"])
    if r["ci"] is not None:
        lo, hi = (_fmt_r(v) for v in r["ci"])
        mark = {"exact": "", "lower": ">=", "upper": "<=", "undetermined": "?"}[r["ci_bound"]]
        text += f" {mark}[{lo}, {hi}]" if mark != "?" else f" [{lo}, {hi}]?"
    return text


def _steps_cell(g: Mapping[str, Any]) -> str:
    if g["median_steps"] is not None:
        m = g["median_steps"]
        s = f"{m:.0f}" if float(m).is_integer() else f"{m:.1f}"
    else:
        s = f">{g['median_steps_lower']:.0f}"  # censored median: more than the budget
    return f"{s} [{g['n_reached']}/{g['n_seeds']}]"


def _varying_keys(summary: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    settings = [s["setting"] for s in summary["settings"]]
    keys = list(settings[0]) if settings else []
    varying = [k for k in keys if len({json.dumps(s.get(k)) for s in settings}) > 1]
    common = {k: settings[0][k] for k in keys if k not in varying and settings[0][k] is not None}
    return varying, common


def _kv(d: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items())


def _rows(s: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    ref = s["reference_label"]
    head = ["activation", "best lr", "steps to target [reached/seeds]", "final error"]
    head += [f"x/{ref} (95% CI)", "censored/failed"]
    rows = []
    for label, g in s["groups"].items():
        lr = _fmt_lr(g["best_lr"]) + ("*" if g["best_lr_at_edge"] else "")
        ratio = "1 (reference)" if label == ref else _fmt_ratio(s["vs_reference"][label])
        rows.append(
            [label, lr, _steps_cell(g), _fmt_num(g["mean_final_error"]), ratio, _fail_cell(g)]
        )
    return head, rows


def _fail_cell(g: Mapping[str, Any]) -> str:
    """'1/2 (2 diverged)': runs censored at the budget / runs that failed, and why."""
    why = [f"{g[k]} {k[2:]}" for k in ("n_diverged", "n_collapsed") if g.get(k)]
    text = f"{g.get('n_censored', 0)}/{g.get('n_failed', 0)}"
    return text + (f" ({', '.join(why)})" if why else "")


def _pair_note(r: Mapping[str, Any]) -> str:
    how = "paired" if r.get("paired") else "unpaired"
    return (
        f"{how} seed bootstrap over {r.get('n_num')}/{r.get('n_den')} seeds, {r.get('ci_method')}"
    )


_LEGEND = (
    "* best lr on the edge of its grid. Steps: Kaplan-Meier median over seeds; >N: median not "
    "reached within N steps. censored/failed: runs that ran out of budget / diverged or "
    "collapsed to chance (failures never reach the target; none is dropped). "
    ">= / <=: censored runs make the ratio (or CI) a lower / upper bound; "
    "?: censored on both sides."
)


def format_table(summary: Mapping[str, Any]) -> str:
    """A plain-text table per setting for the terminal."""
    if not summary["settings"]:
        return "no records"
    varying, common = _varying_keys(summary)
    out = [f"common: {_kv(common)}"] if common else []
    for s in summary["settings"]:
        head, rows = _rows(s)
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        out.append("")
        if varying:
            out.append(_kv({k: s["setting"][k] for k in varying}))
        for r in [head, *rows]:
            out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if s["reference_pair"] is not None:
            rp = s["reference_pair"]
            out.append(
                f"{rp['numerator']}/{rp['denominator']} = {_fmt_ratio(rp)} "
                f"(> 1: {rp['denominator']} reaches the target in fewer steps). "
                f"CI: {_pair_note(rp)}"
            )
    out += ["", _LEGEND]
    return "\n".join(out)


def _markdown(summary: Mapping[str, Any], run: Mapping[str, Any]) -> str:
    lines = [f"# Sweep summary: {run.get('name', '')}", ""]
    for k in ("git_commit", "config_hash", "status", "jax_version", "devices"):
        lines.append(f"- {k.replace('_', ' ')}: `{run.get(k)}`")
    lines.append(
        f"- records: {summary['n_records']}; bootstrap: {summary['n_boot']} resamples of seeds "
        f"(paired where both sides ran the same seeds), {summary.get('ci_method')} 95% CI"
    )
    lines.append("")
    if not summary["settings"]:
        return "\n".join([*lines, "No records.", ""])
    varying, common = _varying_keys(summary)
    if common:
        lines += [f"Common setting: {_kv(common)}", ""]
    for i, s in enumerate(summary["settings"], 1):
        title = _kv({k: s["setting"][k] for k in varying})
        lines += [f"## Setting {i}: {title}" if title else "## Results", ""]
        head, rows = _rows(s)
        rows = [[c.replace("*", "\\*") for c in r] for r in rows]  # not emphasis markers
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        if s["reference_pair"] is not None:
            rp = s["reference_pair"]
            lines += [
                "",
                f"**{rp['numerator']}/{rp['denominator']} = {_fmt_ratio(rp)}** ({_pair_note(rp)})",
            ]
        if len(s["pairs"]) > 1:
            lines += ["", "| pair (slower/faster) | ratio (95% CI) |", "|---|---|"]
            lines += [
                f"| {p['numerator']}/{p['denominator']} | {_fmt_ratio(p)} |" for p in s["pairs"]
            ]
        lines.append("")
    lines += [_LEGEND.replace("*", "\\*"), "", "![training error curves](curves.png)", ""]
    lines += _diag_markdown(summary, varying)
    return "\n".join(lines)


def _has_diagnostics(summary: Mapping[str, Any]) -> bool:
    return any("diagnostics" in g for s in summary["settings"] for g in s["groups"].values())


def _diag_markdown(summary: Mapping[str, Any], varying: Sequence[str]) -> list[str]:
    """Per-layer tables: one per (setting, activation) at its best lr, medians over seeds."""
    if not _has_diagnostics(summary):
        return []
    lines = [
        "## Per-layer diagnostics",
        "",
        "Median over seeds at the best lr, at the first diagnostic point (init) and the last "
        "one before divergence (final). grad_sq: mean squared gradient of an example's loss "
        "with respect to the layer's pre-activations; dead: fraction of units whose "
        "derivative is 0 on every evaluation example; saturated: fraction of (unit, example) "
        "pairs with |phi'| < 1% of its maximum; same-sign: fraction of units whose incoming "
        "weight gradients share one sign (per example). Cells read init -> final.",
        "",
    ]

    def cell(d: Mapping[str, Any], m: str, i: int, fmt: str) -> str:
        vals = [d.get(f"{w}_{m}") for w in ("init", "final")]
        vals = [v[i] if v is not None and i < len(v) else None for v in vals]
        return " -> ".join("-" if v is None else format(v, fmt) for v in vals)

    for s in summary["settings"]:
        title = _kv({k: s["setting"][k] for k in varying})
        for label, g in s["groups"].items():
            d = g.get("diagnostics")
            if not d:
                continue
            n_layers = max(len(v) for v in d.values())
            head = f"### {label} (lr {_fmt_lr(g['best_lr'])}, {g['n_seeds']} seeds)"
            lines += [head + (f", {title}" if title else ""), ""]
            lines.append("| layer | grad_sq | dead | saturated | same-sign |")
            lines.append("|---|---|---|---|---|")
            for i in range(n_layers):
                cells = [
                    cell(d, "grad_sq", i, ".3g"),
                    cell(d, "dead_fraction", i, ".3f"),
                    cell(d, "saturation_fraction", i, ".3f"),
                    cell(d, "same_sign_fraction", i, ".3f"),
                ]
                lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += ["![per-layer gradients over training](grad_norms.png)", ""]
    return lines


# --------------------------------------------------------------------------- report


def _plot(summary: Mapping[str, Any], curves: Mapping[str, Mapping[str, np.ndarray]]) -> bytes:
    """Median eval-subset training error vs step per activation at its best lr, min-max band."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    settings = summary["settings"][:12]  # more panels would be unreadable; the tables have all
    n = max(len(settings), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(5.5 * cols, 4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    varying, _ = _varying_keys(summary)
    for ax, s in zip(axes, settings, strict=False):  # axes may outnumber settings
        drawn = False
        for label, g in s["groups"].items():
            rows_ = [curves[c] for c in g["config_ids"] if c in curves]
            rows_ = [c for c in rows_ if "eval_error" in c and "eval_steps" in c]
            if not rows_:
                continue
            steps = np.asarray(rows_[0]["eval_steps"])
            ys = np.stack([c["eval_error"] for c in rows_ if len(c["eval_error"]) == len(steps)])
            with warnings.catch_warnings():  # an all-NaN column (all diverged) stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                med, lo, hi = np.nanmedian(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0)
            (line,) = ax.plot(
                steps, med, label=f"{label} (lr {_fmt_lr(g['best_lr'])}, {len(ys)} seeds)"
            )
            ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            drawn = True
        target = s["setting"].get("target")
        if isinstance(target, int | float):
            ax.axhline(target, color="k", linestyle="--", linewidth=1, label=f"target {target:g}")
        if not drawn:
            ax.text(0.5, 0.5, "no curves", transform=ax.transAxes, ha="center", va="center")
        ax.set_title(_kv({k: s["setting"][k] for k in varying}) or "training error", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("training error (eval subset)")
        ax.legend(fontsize=7)
    for ax in axes[len(settings) :]:
        ax.set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _plot_grad_norms(
    summary: Mapping[str, Any], curves: Mapping[str, Mapping[str, np.ndarray]]
) -> bytes | None:
    """Mean squared pre-activation gradient per layer (median over seeds at the best lr), one
    line per diagnostic step coloured by time; one panel per (setting, activation). None when
    no curves carry ``diag_grad_sq``."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    varying, _ = _varying_keys(summary)
    panels = []
    for s in summary["settings"]:
        for label, g in s["groups"].items():
            rows = [curves.get(c, {}) for c in g["config_ids"]]
            rows = [c for c in rows if "diag_grad_sq" in c and "diag_steps" in c]
            if rows:
                title = _kv({k: s["setting"][k] for k in varying})
                panels.append((f"{label} (lr {_fmt_lr(g['best_lr'])})", title, rows))
    if not panels:
        return None
    panels = panels[:12]  # more would be unreadable; the tables have all
    cols = min(len(panels), 3)
    n_rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(5 * cols, 3.8 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, cols, squeeze=False).ravel()
    cmap = colormaps["viridis"]
    for ax, (label, title, rows) in zip(axes, panels, strict=False):
        steps = np.asarray(rows[0]["diag_steps"])
        ys = np.stack([c["diag_grad_sq"] for c in rows if c["diag_grad_sq"].shape[0] == len(steps)])
        with warnings.catch_warnings():  # all seeds NaN (diverged) stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(ys, axis=0)  # (D, L)
        layers = np.arange(1, med.shape[1] + 1)
        norm = Normalize(0, max(int(steps[-1]), 1))
        for step, y in zip(steps, med, strict=True):
            ax.plot(layers, y, color=cmap(norm(step)), marker=".", linewidth=1)
        if np.nanmin(med, initial=np.inf) > 0:
            ax.set_yscale("log")
        fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label="step")
        ax.set_title(f"{label}" + (f"\n{title}" if title else ""), fontsize=9)
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("mean squared dL/dh (per example)")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _run_info(run: Path) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if (run / "meta.json").is_file():
        meta = json.loads((run / "meta.json").read_text())
    info = {k: meta.get(k) for k in ("status", "jax_version", "devices", "git_commit")}
    info["name"] = f"{run.parent.name}/{run.name}"
    info["config_hash"] = meta.get("config_hash")
    if info["config_hash"] is None:  # older metadata: hash the stored config file instead
        for name in ("config.json", "config.toml"):
            if (run / name).is_file():
                digest = hashlib.sha256((run / name).read_bytes()).hexdigest()[:10]
                info["config_hash"] = f"{digest} (sha256 of {name})"
                break
    return _jsonable(info)


def write_report(run_dir: str | os.PathLike, **summarize_kwargs: Any) -> dict[str, Any]:
    """Write summary.json, summary.md and curves.png (and grad_norms.png for a run with
    per-layer diagnostics) into ``run_dir``; return the summary.

    The summary is ``summarize(records, **summarize_kwargs)`` plus ``run`` (name, git commit,
    config hash, status, JAX version, devices from meta.json). Every file is written to a
    temporary name and renamed, so a reader never sees a half-written report.
    """
    run = Path(run_dir)
    records, curves = load_run(run)
    summary = {"run": _run_info(run), **summarize(records, **summarize_kwargs)}
    atomic_write_bytes(run / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    atomic_write_bytes(run / "summary.md", _markdown(summary, summary["run"]).encode())
    atomic_write_bytes(run / "curves.png", _plot(summary, curves))
    grad_png = _plot_grad_norms(summary, curves)
    if grad_png is not None:
        atomic_write_bytes(run / "grad_norms.png", grad_png)
    return summary

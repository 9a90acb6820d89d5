"""What every claim shares: its output directory, sweeps, REPORT.md, and the statistics and
tables of the training claims (bootstrap CIs, median curves, slimmed curves files)."""

from __future__ import annotations

import dataclasses
import io
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import config, results, stats, summary


@dataclasses.dataclass(frozen=True)
class Context:
    """Where a claim writes and at which size it runs.

    ``size`` is "tiny" (tests, seconds), "default" (2 CPU cores, <= 15 minutes) or "full"
    (the faithful setting, for a GPU). ``out_dir`` is ``<out>/reproductions/<name>[/gpu]``.
    """

    name: str
    out_dir: Path
    size: str
    data_dir: str | None

    @classmethod
    def make(
        cls, name: str, *, out: str | Path, full: bool, tiny: bool, data_dir: str | None
    ) -> Context:
        if full and tiny:
            raise ValueError("size: --full and --tiny exclude each other")
        size = "full" if full else "tiny" if tiny else "default"
        out_dir = Path(out) / "reproductions" / name
        if full:
            out_dir = out_dir / "gpu"
        return cls(name, out_dir, size, data_dir)

    def pick(self, *, tiny: Any, default: Any, full: Any) -> Any:
        """The value for this size."""
        return {"tiny": tiny, "default": default, "full": full}[self.size]

    @property
    def command(self) -> str:
        flag = {"tiny": " --tiny", "default": "", "full": " --full"}[self.size]
        return f"python -m bench reproduce {self.name}{flag}"


def sweep(ctx: Context, spec: dict[str, Any], *, probe: Any = None) -> tuple[Path, list[dict]]:
    """Run (or resume) a sweep under ``<out_dir>/runs``; returns (run_dir, records)."""
    from bench import config
    from bench.sweep import run_sweep

    spec = {"data_dir": ctx.data_dir, **spec} if ctx.data_dir else dict(spec)
    cfg = config.parse(spec)
    run_dir = run_sweep(
        cfg, ctx.out_dir / "runs", progress=sys.stderr.isatty(), report=False, probe=probe
    )
    return run_dir, results.read_records(run_dir)


def save_figure(ctx: Context, fig: Any, name: str) -> str:
    """Save a matplotlib figure as ``<out_dir>/<name>`` (PNG, atomically); returns the name."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    results.atomic_write_bytes(ctx.out_dir / name, buf.getvalue())
    return name


def write_report(
    ctx: Context,
    *,
    title: str,
    claim: str,
    setup: str,
    results_md: str,
    verdict: str,
    figures: Sequence[str] = (),
    config: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    answer: str | None = None,
) -> dict[str, Any]:
    """Write REPORT.md, summary.json and meta.json; returns the summary.

    ``answer`` is the one-paragraph answer the report opens with (written from the numbers;
    also the summary's ``answer``). ``claim`` quotes what the source says (with its numbers),
    ``setup`` says what was run,
    ``results_md`` holds the measured-vs-published tables (markdown), ``verdict`` says in plain
    words whether the claim held here, and where not, why.
    """
    env = results.environment()
    meta = {
        "claim": ctx.name,
        "size": ctx.size,
        "command": ctx.command,
        "created": results.now(),
        "config": config or {},
        **env,
    }
    figs = "\n".join(f"![{f}]({f})" for f in figures)
    commit = env.get("git_commit") or "unknown"
    dirty = " (with uncommitted changes)" if env.get("git_dirty") else ""
    opening = f"## Answer\n\n{answer.strip()}\n\n" if answer else ""
    text = (
        f"# {title}\n\n"
        f"Command: `{ctx.command}` ({ctx.size} setting). Git commit `{commit}`{dirty}, "
        f"JAX {env['jax_version']} on {env['platform']} ({len(env['devices'])} device(s)), "
        f"{meta['created']}.\n\n"
        f"{opening}"
        f"## Claim\n\n{claim.strip()}\n\n"
        f"## Setup\n\n{setup.strip()}\n\n"
        f"## Results\n\n{results_md.strip()}\n\n"
        f"{figs}\n\n"
        f"## Verdict\n\n{verdict.strip()}\n"
    )
    summary = {"claim": ctx.name, "size": ctx.size, "verdict": verdict.strip(), **(data or {})}
    if answer:
        summary["answer"] = answer.strip()
    summary["report"] = str(ctx.out_dir / "REPORT.md")
    results.atomic_write_text(ctx.out_dir / "REPORT.md", text)
    results.write_json(ctx.out_dir / "summary.json", summary)
    results.write_json(ctx.out_dir / "meta.json", meta)
    return summary


# --------------------------------------------------------------------------- statistics and tables

N_BOOT = 2000


def boot_ci(
    values: Sequence[float], stat: str = "median", n_boot: int = N_BOOT, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile-bootstrap 95% CI of the median (or mean) of ``values`` over seeds
    (``bench.stats.bootstrap_ci``).

    ``inf`` (a censored run) stays inf, so an upper end of inf means "not determined".
    """
    return stats.bootstrap_ci(values, stat, n_boot=n_boot, seed=seed)


def clean(v: Any) -> Any:
    """JSON-safe copy: non-finite floats (a censored CI end) become None."""
    if isinstance(v, Mapping):
        return {k: clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [clean(x) for x in v]
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    return v


def fmt_steps(x: float | None, budget: int | None = None) -> str:
    if x is None or not math.isfinite(x):
        return f">{budget}" if budget else "censored"
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def fmt_ci(ci: tuple[float, float] | None, budget: int | None = None, digits: int = 0) -> str:
    if ci is None:
        return "-"
    if digits:
        return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return f"[{fmt_steps(ci[0], budget)}, {fmt_steps(ci[1], budget)}]"


def fmt_ratio(r: Mapping[str, Any] | None) -> str:
    """A ratio of bench.summary with its bound markers ('>= 2.1 [1.5, 3.0]')."""
    return summary._fmt_ratio(r) if r is not None else "-"


def md_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def steps_values(g: Mapping[str, Any]) -> list[float]:
    """Steps to target of each seed at the group's best lr; inf where censored."""
    return [math.inf if s is None else float(s) for s in g["steps_to_target"]]


def final_errors(records: Sequence[Mapping[str, Any]], config_ids: Sequence[str]) -> list[float]:
    by_id = {r["config_id"]: r for r in records}
    out = []
    for c in config_ids:
        e = by_id[c].get("final_train_error")
        out.append(math.nan if e is None else float(e))
    return out


def median_curve(
    curves: Mapping[str, Mapping[str, np.ndarray]], config_ids: Sequence[str], key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(steps, median, min, max) over the given configurations of curve ``key``."""
    rows = [curves[c] for c in config_ids if c in curves and key in curves[c]]
    every = 1
    if not rows and key == "loss":  # slimmed curves keep the loss every n steps
        sub = [k for c in config_ids if c in curves for k in curves[c] if k.startswith("loss_")]
        if sub:
            key, every = sub[0], int(sub[0].rsplit("_", 1)[1])
            rows = [curves[c] for c in config_ids if c in curves and key in curves[c]]
    if not rows:
        return None
    ys = np.stack([np.asarray(r[key], np.float64) for r in rows])
    if key == "eval_error":
        steps = np.asarray(rows[0]["eval_steps"])
    else:
        steps = every * np.arange(1, ys.shape[1] + 1)
    with warnings.catch_warnings():  # an all-NaN column (every seed diverged) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return steps, np.nanmedian(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0)


SLIM_KEEP = ("config_ids", "eval_steps", "eval_error")


def slim_curves(run_dir: Path, keep: Sequence[str] = SLIM_KEEP, every: int = 1) -> None:
    """Drop the per-step arrays (minibatch loss/error) from the run's curves files, keeping the
    evaluation curves the figures use (and, with ``every > 1``, the loss every ``every`` steps
    as ``loss_every_<n>``). The files keep their names, so a rerun still resumes."""
    for path in sorted((run_dir / "curves").glob("*.npz")):
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        out = {k: v for k, v in arrays.items() if k in keep}
        if every > 1 and "loss" in arrays:
            out[f"loss_every_{every}"] = arrays["loss"][:, every - 1 :: every].astype(np.float32)
        for k, v in arrays.items():
            if k.startswith("loss_every_"):
                out[k] = v
        if set(out) != set(arrays):
            results.write_curves(run_dir, path.stem, out)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def theory_chi1(act: str, sigma_w: float, sigma_b: float = 0.0) -> float:
    from activations import theory

    return float(theory.chi1(act, sigma_w, sigma_b))


def fmt_num(x: float | None, d: int = 3) -> str:
    """A number to d significant digits; "n/a" for None, NaN or inf."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{d}g}"


def fmt_interval(ci: tuple[float, float] | None, d: int = 3) -> str:
    """A confidence interval as "[lo, hi]"; "-" when there is none."""
    return "-" if ci is None else f"[{fmt_num(ci[0], d)}, {fmt_num(ci[1], d)}]"


# --------------------------------------------------------------------------- the tuned protocol

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"
STATUSES = (HELD, NOT_HELD, INCONCLUSIVE)


def pick(size: str, *, tiny: Any, default: Any, full: Any) -> Any:
    """The value for ``size`` ("tiny", "default" or "full")."""
    return {"tiny": tiny, "default": default, "full": full}[size]


@dataclasses.dataclass(frozen=True)
class Tuned:
    """A finished tuned sweep (``bench.protocol``): its directory, the protocol's summary and
    every run, each with its ``stage`` ("tune" or "measure")."""

    root: Path
    protocol: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def measured(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["stage"] == "measure"]

    def stage_dirs(self, stage: str) -> list[Path]:
        return sorted(p.parent for p in (self.root / "stages").glob(f"*-{stage}/*/records.jsonl"))


def tuned_sweep(ctx: Context, spec: dict[str, Any]) -> Tuned:
    """Run (or resume) a spec with ``protocol = "tuned"`` under ``<out_dir>/runs``: the lr is
    tuned per setting on ``tuning_seeds``, then measured on the ``seed`` axis."""
    from bench import config, protocol

    spec = {"data_dir": ctx.data_dir, **spec} if ctx.data_dir else dict(spec)
    cfg = config.parse(spec)
    if cfg.protocol != "tuned":
        raise ValueError(f"protocol: tuned_sweep runs protocol = 'tuned', got {cfg.protocol!r}")
    root = protocol.run_protocol(
        cfg, ctx.out_dir / "runs", progress=sys.stderr.isatty(), report=False
    )
    p, records = protocol.load(root)
    return Tuned(root, p, records)


# What identifies a run across stage directories (config ids repeat there).
_RUN_KEYS = config.STATIC_AXES + config.DYNAMIC_AXES


def _run_key(r: Mapping[str, Any]) -> str:
    return results.to_json({k: r.get(k) for k in _RUN_KEYS}, sort_keys=True)


def measured_curves(t: Tuned) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    """(record, curves) of every measurement run (stage directories left by older runs of the
    same claim, at an lr no longer chosen, are skipped)."""
    want = {_run_key(r) for r in t.measured}
    out = []
    for d in t.stage_dirs("measure"):
        recs, curves = summary.load_run(d)
        out += [(r, curves.get(r["config_id"], {})) for r in recs if _run_key(r) in want]
    return out


def slim_stages(t: Tuned, keep: Sequence[str] = SLIM_KEEP, every: int = 1) -> None:
    """``slim_curves`` on every stage directory of a tuned sweep."""
    for stage in ("tune", "measure"):
        for d in t.stage_dirs(stage):
            slim_curves(d, keep, every)


def select(records: Sequence[Mapping[str, Any]], **match: Any) -> list[dict[str, Any]]:
    """The records whose fields equal ``match``, in seed order."""
    out = [dict(r) for r in records if all(r.get(k) == v for k, v in match.items())]
    return sorted(out, key=lambda r: (r.get("seed") is None, r.get("seed")))


def km(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Kaplan-Meier median steps to target of one setting's runs (one per seed), its seed-
    bootstrap 95% CI (None ends: not reached), and the count of each outcome (``bench.stats``:
    censored runs ran out of budget; diverged and collapsed runs are failures, counted as
    never reaching the target)."""
    from bench import protocol

    s = stats.sample(records)
    m = stats.km_median(s.time, s.event) if records else math.nan
    return {
        "median": float(m) if math.isfinite(m) else None,
        "ci": protocol.median_interval(s),
        "n": len(records),
        **{o: s.count(o) for o in stats.OUTCOMES},
        "failed": int(s.failed.sum()),
    }


def ratio(num: Sequence[Mapping[str, Any]], den: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """KM median steps of ``num`` / ``den`` with a seed-bootstrap 95% CI, paired when both ran
    the same seeds (``bench.stats.median_ratio``)."""
    return stats.median_ratio(stats.sample(num), stats.sample(den))


def side(ci: Sequence[float | None] | None, threshold: float, bound: str | None = "exact") -> int:
    """+1 when the CI lies above ``threshold``, -1 below, 0 when it straddles it or is not
    determined. ``bound`` ("lower": the ends can only be too low; "upper": too high) keeps only
    the conclusions the bound still supports."""
    lo, hi = ci if ci else (None, None)
    if lo is not None and lo > threshold and bound in ("exact", "lower", None):
        return 1
    if hi is not None and hi < threshold and bound in ("exact", "upper", None):
        return -1
    return 0


def status(sign: int, held: int) -> str:
    """HELD when ``sign`` is the side the claim predicts, NOT_HELD on the other side,
    INCONCLUSIVE at 0."""
    return INCONCLUSIVE if sign == 0 else HELD if sign == held else NOT_HELD


def combine(statuses: Sequence[str]) -> str:
    """A claim of several parts: held if every part held, not held if any part did not,
    inconclusive otherwise."""
    if any(s == NOT_HELD for s in statuses):
        return NOT_HELD
    return HELD if statuses and all(s == HELD for s in statuses) else INCONCLUSIVE


def proportion_ci(k: int, n: int) -> list[float] | None:
    """Clopper-Pearson 95% CI of a proportion k / n (None for n = 0)."""
    from scipy.stats import binomtest

    if n == 0:
        return None
    ci = binomtest(k, n).proportion_ci(0.95, method="exact")
    return [float(ci.low), float(ci.high)]


def protocol_block(p: Mapping[str, Any]) -> dict[str, Any]:
    """The ``protocol`` object of a claim's summary from ``bench.protocol``'s summary."""
    pr = p["protocol"]
    return {
        "design": "tuned",
        "statistical_unit": "seed (measurement seeds; paired across settings)",
        "tuning_seeds": pr["tuning_seeds"],
        "measurement_seeds": pr["measurement_seeds"],
        "lr_grid": pr["lr_grid"],
        "lr_extensions": pr["lr_extensions"],
        "estimator": pr["estimator"],
        "ci_method": pr["ci_method"],
        "n_measured": pr["n_measured"],
        "n_censored": pr["n_censored"],
        "n_failed": pr["n_failed"],
        "brackets": [
            {
                "setting": row["label"],
                "lr": row["lr"],
                "below": row["bracket"]["below"],
                "above": row["bracket"]["above"],
                "closed": row["bracket"]["closed"],
                "open_side": row["bracket"]["open_side"],
                "tried": [g["lr"] for g in row["tuning"]],
            }
            for row in p["settings"]
        ],
    }


def grid_block(seeds: Sequence[int], ci_method: str, **extra: Any) -> dict[str, Any]:
    """The ``protocol`` object of a claim whose grid is itself the design (no lr tuning)."""
    return {
        "design": "grid",
        "statistical_unit": "seed",
        "measurement_seeds": list(seeds),
        "ci_method": ci_method,
        **extra,
    }


def protocol_md(block: Mapping[str, Any]) -> str:
    """The protocol in words and, for a tuned design, the lr bracket of each setting."""
    if block["design"] != "tuned":
        return (
            f"Design: the grid as given, no lr tuning; statistical unit: the seed "
            f"({len(block['measurement_seeds'])} seeds {block['measurement_seeds']}); "
            f"CIs: {block['ci_method']}."
        )
    text = (
        f"Protocol (`bench.protocol`): the lr of each setting is tuned on seeds "
        f"{block['tuning_seeds']} starting from the grid {block['lr_grid']} and extended (at most "
        f"{block['lr_extensions']} times per side) until the best lr is bracketed; every number "
        f"below comes from the {len(block['measurement_seeds'])} measurement seeds "
        f"{block['measurement_seeds']} at the chosen lr. {block['estimator']}; CIs: "
        f"{block['ci_method']}. Measurement runs: {block['n_measured']}, of which "
        f"{block['n_censored']} censored (budget ran out) and {block['n_failed']} failed "
        "(diverged or collapsed to chance; counted, never dropped)."
    )
    rows = [
        [
            b["setting"],
            ", ".join(f"{x:g}" for x in b["tried"]),
            f"{b['lr']:g}",
            "closed" if b["closed"] else "OPEN " + "/".join(b["open_side"]),
        ]
        for b in block["brackets"]
    ]
    return text + "\n\n" + md_table(["setting", "lrs tried", "chosen lr", "bracket"], rows)


def fmt_km(c: Mapping[str, Any] | None, budget: int | None = None) -> str:
    """'median [lo, hi]' of ``km``; '>budget' where not reached."""
    if not c:
        return "-"
    lo, hi = c["ci"] or [None, None]
    return f"{fmt_steps(c['median'], budget)} [{fmt_steps(lo, budget)}, {fmt_steps(hi, budget)}]"


def fmt_outcomes(c: Mapping[str, Any]) -> str:
    """'reached/n (c censored, f failed)'."""
    return f"{c['reached']}/{c['n']} ({c['censored']} censored, {c['failed']} failed)"

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

from bench import results, summary


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
    figures: list[str] = (),
    config: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write REPORT.md, summary.json and meta.json; returns the summary.

    ``claim`` quotes what the source says (with its numbers), ``setup`` says what was run,
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
    text = (
        f"# {title}\n\n"
        f"Command: `{ctx.command}` ({ctx.size} setting). Git commit `{commit}`{dirty}, "
        f"JAX {env['jax_version']} on {env['platform']} ({len(env['devices'])} device(s)), "
        f"{meta['created']}.\n\n"
        f"## Claim\n\n{claim.strip()}\n\n"
        f"## Setup\n\n{setup.strip()}\n\n"
        f"## Results\n\n{results_md.strip()}\n\n"
        f"{figs}\n\n"
        f"## Verdict\n\n{verdict.strip()}\n"
    )
    summary = {"claim": ctx.name, "size": ctx.size, "verdict": verdict.strip(), **(data or {})}
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
    """Percentile-bootstrap 95% CI of the median (or mean) of ``values`` over seeds.

    ``inf`` (a censored run) stays inf, so an upper end of inf means "not determined".
    """
    v = np.asarray([math.inf if x is None else float(x) for x in values], np.float64)
    if v.size == 0:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, (n_boot, v.size))
    f = np.median if stat == "median" else np.mean
    with np.errstate(invalid="ignore"):
        boot = f(v[idx], axis=1)
        lo, hi = np.percentile(boot, [2.5, 97.5], method="lower" if stat == "median" else "linear")
    return float(lo), float(hi)


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

"""What every claim shares: its output directory, metadata, sweeps and REPORT.md."""

from __future__ import annotations

import dataclasses
import io
import sys
from pathlib import Path
from typing import Any

from bench import results


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

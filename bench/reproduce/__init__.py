"""``python -m bench reproduce NAME [--full]``: the seed's claims, one command each.

Each claim is a module of this package in testable pieces: ``spec(size)``, the sweep as data
(size "tiny", "default" or "full"); ``analyse``, records in, summary dict out (pure);
``verdict(summary) -> (status, text)``, status one of "held", "not held", "inconclusive"
(pure; inconclusive when a 95% CI straddles the claim's threshold); figures; ``report``, which
writes REPORT.md from the summary; and ``run(ctx) -> summary`` chaining them. Where a claim
compares training speed at an lr chosen per setting, its spec runs ``bench.protocol`` (lr tuned
on tuning seeds, measured on 8 fresh ones); the summary's ``protocol`` object says how.

A claim writes ``results/reproductions/NAME/`` (``.../NAME/gpu/`` with ``--full``): REPORT.md
with the setup, measured vs published numbers with confidence intervals and a verdict in plain
words, PNG figures, summary.json, the raw records and meta.json (git commit, config, versions).
The default setting fits 2 CPU cores; ``--full`` is the faithful setting for a GPU. ``--tiny``
runs seconds-long settings for the tests, writing under the given ``--out``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from bench import cli
from bench.reproduce._common import Context

# name -> module (under bench.reproduce)
CLAIMS: dict[str, str] = {
    "relu-vs-tanh": "relu_vs_tanh",
    "ratio-map": "ratio_map",
    "activation-league": "activation_league",
    "glorot-bengio": "glorot_bengio",
    "he-30-layer": "he_30_layer",
    "selu-fixed-point": "selu_fixed_point",
    "dead-relu": "dead_relu",
    "saturation": "saturation",
}


def run(
    name: str,
    *,
    out: str | Path = "results",
    full: bool = False,
    tiny: bool = False,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Run one claim; returns its summary (also written to its directory)."""
    if name not in CLAIMS:
        raise ValueError(f"claim: unknown {name!r}; valid: {', '.join(CLAIMS)}")
    module = importlib.import_module(f"bench.reproduce.{CLAIMS[name]}")
    ctx = Context.make(name, out=out, full=full, tiny=tiny, data_dir=data_dir)
    return module.run(ctx)


def _add(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=[*CLAIMS, "all"], help="the claim to reproduce")
    p.add_argument("--out", default="results", help="results root (default: results)")
    p.add_argument("--full", action="store_true", help="the faithful (GPU-sized) setting")
    p.add_argument("--tiny", action="store_true", help="seconds-long setting (tests)")
    p.add_argument("--data-dir", help="dataset directory (CIFAR-10 for --full relu-vs-tanh)")


def _run(args: argparse.Namespace) -> int:
    names = list(CLAIMS) if args.name == "all" else [args.name]
    for name in names:
        s = run(name, out=args.out, full=args.full, tiny=args.tiny, data_dir=args.data_dir)
        print(f"{name}: {s.get('status', '')}  ->  {s.get('report', '')}", file=sys.stdout)
    return 0


cli.register("reproduce", "reproduce one of the seed's claims (REPORT.md + figures)", _add, _run)

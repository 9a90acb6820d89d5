"""Claim 7 (the seed's slides): large learning rates kill ReLUs; a small positive bias init
(0.01) reduces dead units; the init scheme matters.

One sweep of ReLU MLPs on MNIST-1D with ``diagnostics = true``: learning rate from small to
large x bias init (0, 0.01) x init scheme (he_normal, lecun_normal, xavier_uniform) x seeds.
A unit is dead when its derivative is 0 on every one of the diagnostic examples (the first
``diag_size`` training examples), ``bench.diagnostics``' ``dead_fraction`` per hidden layer; the
statistic of a run is the fraction over all hidden units at the end of training
(``final_dead_fraction`` averaged over the equal-width layers).

Comparisons are paired: runs that differ only in bias init (or only in the init scheme, whose
weights are the same standard draw scaled differently) share the seed, hence the initial
draw and the minibatches, so the difference is taken per (init, lr, seed) and its mean gets a
bootstrap CI over those pairs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.reproduce._common import (
    Context,
    boot_ci,
    dir_size,
    md_table,
    save_figure,
    slim_curves,
    sweep,
    write_report,
)
from bench.reproduce._common import fmt_interval as _ci
from bench.reproduce._common import fmt_num as _f

TITLE = "Dead ReLUs vs learning rate, bias init and init scheme"

INITS = ("he_normal", "lecun_normal", "xavier_uniform")
BIASES = (0.0, 0.01)


def _spec(ctx: Context) -> dict[str, Any]:
    steps = ctx.pick(tiny=20, default=1500, full=5000)
    every = ctx.pick(tiny=10, default=150, full=250)
    return {
        "experiment": "dead-relu",
        "dataset": "mnist1d",
        "activation": "relu",
        "depth": 4,
        "width": ctx.pick(tiny=16, default=128, full=256),
        "init": ctx.pick(tiny=["he_normal"], default=list(INITS), full=list(INITS)),
        "optimizer": "sgd",
        "batch_size": ctx.pick(tiny=16, default=64, full=128),
        "steps": steps,
        "lr": ctx.pick(
            tiny=[0.01, 1.0],
            default=[0.01, 0.03, 0.1, 0.3, 0.6, 1.0],
            full=[0.003, 0.01, 0.03, 0.1, 0.3, 0.6, 1.0, 2.0],
        ),
        "bias_init": list(BIASES),
        "seed": list(range(ctx.pick(tiny=2, default=3, full=8))),
        "eval_every": every,
        "eval_size": ctx.pick(tiny=64, default=1000, full=1000),
        "target": 0.5,
        "diagnostics": True,
        "diag_every": every,
        "diag_size": ctx.pick(tiny=64, default=512, full=1000),
    }


def _net_dead(r: dict[str, Any], key: str = "final_dead_fraction") -> float:
    """Fraction of all hidden units dead (layers have equal width); NaN if unmeasured."""
    v = r.get(key)
    if v is None or r.get("diverged"):
        return math.nan
    a = np.array([math.nan if x is None else float(x) for x in v])
    return float(np.mean(a))


def _paired(records: list[dict], vary: str, a: Any, b: Any, fixed: dict[str, Any]) -> dict:
    """Mean over (other keys, seed) pairs of dead(b) - dead(a), runs differing only in
    ``vary``; bootstrap 95% CI of that mean over the pairs."""

    def key(r: dict) -> tuple:
        return tuple(r[k] for k in ("init", "bias_init", "lr", "seed") if k != vary)

    sel = [r for r in records if all(r[k] == v for k, v in fixed.items())]
    ra = {key(r): r for r in sel if r[vary] == a}
    rb = {key(r): r for r in sel if r[vary] == b}
    d = [_net_dead(rb[k]) - _net_dead(ra[k]) for k in ra if k in rb]
    d = [x for x in d if math.isfinite(x)]
    if not d:
        return {"n_pairs": 0, "mean": None, "ci95": None}
    return {
        "n_pairs": len(d),
        "mean": float(np.mean(d)),
        "ci95": boot_ci(d, "mean"),
        "fraction_b_higher": float(np.mean(np.array(d) > 0)),
        "fraction_equal": float(np.mean(np.array(d) == 0)),
    }


def _cells(spec: dict, records: list[dict]) -> list[dict]:
    out = []
    inits = spec["init"] if isinstance(spec["init"], list) else [spec["init"]]
    for init in inits:
        for bias in spec["bias_init"]:
            for lr in spec["lr"]:
                rs = [
                    r
                    for r in records
                    if r["init"] == init and r["bias_init"] == bias and r["lr"] == lr
                ]
                dead = np.array([_net_dead(r) for r in rs])
                ok = dead[np.isfinite(dead)]
                per_layer = [
                    r["final_dead_fraction"]
                    for r in rs
                    if not r["diverged"] and r.get("final_dead_fraction")
                ]
                out.append(
                    {
                        "init": init,
                        "bias_init": bias,
                        "lr": lr,
                        "n_seeds": len(rs),
                        "n_diverged": sum(bool(r["diverged"]) for r in rs),
                        "dead_per_seed": [None if not math.isfinite(x) else x for x in dead],
                        "dead_median": float(np.median(ok)) if ok.size else None,
                        "dead_mean": float(np.mean(ok)) if ok.size else None,
                        "dead_mean_ci95": boot_ci(ok.tolist(), "mean") if ok.size else None,
                        "dead_min": float(ok.min()) if ok.size else None,
                        "dead_max": float(ok.max()) if ok.size else None,
                        "dead_init_mean": _f(
                            float(np.nanmean([_net_dead(r, "init_dead_fraction") for r in rs]))
                        ),
                        "dead_per_layer_mean": (
                            np.nanmean(
                                np.array(
                                    [[math.nan if x is None else x for x in p] for p in per_layer],
                                    np.float64,
                                ),
                                0,
                            ).tolist()
                            if per_layer
                            else None
                        ),
                        "final_train_error_median": (
                            float(
                                np.median([r["final_train_error"] for r in rs if not r["diverged"]])
                            )
                            if any(not r["diverged"] for r in rs)
                            else None
                        ),
                    }
                )
    return out


def _plot(ctx: Context, spec: dict, cells: list[dict], curves: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inits = spec["init"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for i, init in enumerate(inits):
        for bias, style in zip(spec["bias_init"], ("-", "--"), strict=True):
            cs = [c for c in cells if c["init"] == init and c["bias_init"] == bias]
            lrs = np.array([c["lr"] for c in cs])
            med = np.array([np.nan if c["dead_median"] is None else c["dead_median"] for c in cs])
            lo = np.array([np.nan if c["dead_min"] is None else c["dead_min"] for c in cs])
            hi = np.array([np.nan if c["dead_max"] is None else c["dead_max"] for c in cs])
            err = np.nan_to_num(np.stack([med - lo, hi - med]))
            ax1.errorbar(
                lrs * (1 + 0.04 * (i - 1)),
                med,
                yerr=err,
                fmt="o" + style,
                color=f"C{i}",
                ms=4,
                capsize=2,
                label=f"{init}, bias {bias:g}",
            )
            ht = np.array(
                [
                    np.nan
                    if c["final_train_error_median"] is None
                    else c["final_train_error_median"]
                    for c in cs
                ]
            )
            ax2.plot(lrs, ht, "o" + style, color=f"C{i}", ms=4, label=f"{init}, bias {bias:g}")
            for c in cs:
                if c["n_diverged"]:
                    ax1.annotate(
                        f"{c['n_diverged']} div.",
                        (c["lr"], 0),
                        fontsize=6,
                        color=f"C{i}",
                        rotation=90,
                        va="bottom",
                    )
    ax1.set(
        xscale="log",
        xlabel="learning rate",
        ylabel="dead fraction of hidden units (end)",
        title="dead ReLUs at the end of training (median, min-max over seeds)",
    )
    ax2.set(xscale="log", xlabel="learning rate", ylabel="final training error (median)")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    names = [save_figure(ctx, fig, "dead_vs_lr.png")]

    # Dead fraction over training, per layer, for he_normal / bias 0 at each lr (median seed).
    if curves:
        fig, axes = plt.subplots(
            1,
            len(spec["lr"]),
            figsize=(2.8 * len(spec["lr"]), 3.2),
            sharey=True,
            layout="constrained",
        )
        for ax, lr in zip(np.atleast_1d(axes), spec["lr"], strict=True):
            rows = curves.get((inits[0], spec["bias_init"][0], lr), [])
            if rows:
                steps, arr = rows[0][0], np.stack([r[1] for r in rows])  # (S, D, L)
                med = np.nanmedian(arr, 0)
                for layer in range(med.shape[1]):
                    ax.plot(steps, med[:, layer], lw=1.2, label=f"layer {layer + 1}")
            ax.set(title=f"lr {lr:g}", xlabel="step")
        np.atleast_1d(axes)[0].set_ylabel(f"dead fraction ({inits[0]}, bias 0)")
        np.atleast_1d(axes)[0].legend(fontsize=7)
        names.append(save_figure(ctx, fig, "dead_over_training.png"))
    return names


def _load_dead_curves(run_dir, records: list[dict]) -> dict:
    """(init, bias, lr) -> [(diag_steps, diag_dead_fraction (D, L))] over non-diverged seeds."""
    by_id = {r["config_id"]: r for r in records}
    out: dict = {}
    for path in sorted((run_dir / "curves").glob("*.npz")):
        with np.load(path, allow_pickle=False) as z:
            if "diag_dead_fraction" not in z.files:
                raise RuntimeError(f"{path}: no diag_dead_fraction (sweep diagnostics missing)")
            for i, cid in enumerate(z["config_ids"]):
                r = by_id.get(str(cid))
                if r is None or r["diverged"]:
                    continue
                k = (r["init"], r["bias_init"], r["lr"])
                out.setdefault(k, []).append((z["diag_steps"], z["diag_dead_fraction"][i]))
    return out


def run(ctx: Context) -> dict[str, Any]:
    spec = _spec(ctx)
    run_dir, records = sweep(ctx, spec)
    slim_curves(
        run_dir,
        keep=("config_ids", "eval_steps", "eval_error", "diag_steps", "diag_dead_fraction"),
    )
    curves = _load_dead_curves(run_dir, records)
    cells = _cells(spec, records)
    figures = _plot(ctx, spec, cells, curves)

    inits = list(spec["init"])
    lrs = spec["lr"]
    # Large vs small learning rate, paired by (init, bias, seed).
    lr_pairs = {
        f"{lrs[j]:g} vs {lrs[0]:g}": _paired(records, "lr", lrs[0], lrs[j], {})
        for j in range(1, len(lrs))
    }
    bias_pairs = {
        init: _paired(records, "bias_init", BIASES[0], BIASES[1], {"init": init}) for init in inits
    }
    bias_all = _paired(records, "bias_init", BIASES[0], BIASES[1], {})
    init_pairs = {
        f"{other} - {inits[0]}": _paired(records, "init", inits[0], other, {})
        for other in inits[1:]
    }

    rows = []
    for c in cells:
        rows.append(
            [
                c["init"],
                f"{c['bias_init']:g}",
                f"{c['lr']:g}",
                f"{c['n_seeds'] - c['n_diverged']}/{c['n_seeds']}",
                c["dead_init_mean"],
                f"{_f(c['dead_mean'])} {_ci(c['dead_mean_ci95'])}",
                _f(c["dead_min"]) + " - " + _f(c["dead_max"]),
                ", ".join(_f(x, 2) for x in c["dead_per_layer_mean"] or []),
                _f(c["final_train_error_median"]),
            ]
        )
    table = md_table(
        [
            "init",
            "bias init",
            "lr",
            "finite runs",
            "dead at init",
            "dead at end, mean [95% CI]",
            "range over seeds",
            "per layer (1..4), mean",
            "final train error (median)",
        ],
        rows,
    )

    def pair_rows(d: dict[str, dict]) -> str:
        return md_table(
            ["comparison", "pairs", "mean difference in dead fraction [95% CI]", "share higher"],
            [
                [
                    k,
                    v["n_pairs"],
                    f"{_f(v['mean'])} {_ci(v['ci95'])}",
                    _f(v.get("fraction_b_higher"), 2),
                ]
                for k, v in d.items()
            ],
        )

    results_md = (
        "Published: no numbers; the seed's slides state the direction of each effect "
        "(large lr -> more dead units; bias init 0.01 -> fewer; He vs LeCun/Xavier).\n\n"
        "Dead fraction of all hidden units at the end of training, per cell (mean over seeds, "
        "bootstrap 95% CI over seeds; diverged runs left out):\n\n" + table + "\n\n"
        "Paired differences (same seed: same initial draw and minibatches), mean of "
        "dead(second) - dead(first) over pairs with a bootstrap 95% CI; 'share higher' = "
        "fraction of pairs where the second has more dead units.\n\n"
        "Learning rate (each larger lr against the smallest, all inits and biases):\n\n"
        + pair_rows(lr_pairs)
        + "\n\nBias init 0.01 - 0 (all lrs and seeds, per init scheme, then all):\n\n"
        + pair_rows({**{f"{k}: 0.01 - 0": v for k, v in bias_pairs.items()}, "all": bias_all})
        + "\n\nInit scheme (all lrs, biases and seeds):\n\n"
        + pair_rows(init_pairs)
    )

    # ---- verdict from the measurements
    def sig(v: dict) -> int:
        """+1 / -1 when the CI excludes 0 on that side, 0 otherwise."""
        ci = v.get("ci95")
        if not ci or v["n_pairs"] == 0:
            return 0
        return 1 if ci[0] > 0 else -1 if ci[1] < 0 else 0

    # Dead fraction by lr over every finite run, and the divergences, to describe the trend.
    by_lr = []
    for lr in lrs:
        rs = [r for r in records if r["lr"] == lr]
        d = np.array([_net_dead(r) for r in rs])
        d = d[np.isfinite(d)]
        by_lr.append(
            {
                "lr": lr,
                "mean": float(d.mean()) if d.size else None,
                "max": float(d.max()) if d.size else None,
                "finite": int(d.size),
                "runs": len(rs),
            }
        )
    trend = ", ".join(
        f"lr {b['lr']:g}: {_f(b['mean'], 2)} (max {_f(b['max'], 2)}, {b['finite']}/{b['runs']} "
        "finite)"
        for b in by_lr
    )
    finite = [b for b in by_lr if b["mean"] is not None]
    parts = [f"Dead fraction at the end, mean over all finite runs, by lr: {trend}."]
    if len(finite) >= 2:
        low = min(finite, key=lambda b: b["mean"])
        top = finite[-1]  # the largest lr with finite runs
        if top["lr"] != low["lr"]:
            v = _paired(records, "lr", low["lr"], top["lr"], {})
            s = sig(v)
            parts.append(
                f"Largest lr with finite runs ({top['lr']:g}) against the lr with the fewest dead "
                f"units ({low['lr']:g}): {_f(v['mean'])} more (95% CI {_ci(v['ci95'])}, "
                f"{v['n_pairs']} pairs) -> "
                + (
                    "large learning rates killed ReLUs here"
                    if s > 0
                    else "no significant increase here"
                    if s == 0
                    else "fewer dead units at the large lr"
                )
                + "."
            )
            lr_pairs[f"{top['lr']:g} vs {low['lr']:g} (fewest dead)"] = v
        else:
            parts.append("The largest finite lr had the fewest dead units: no lr effect seen.")
        n_div = sum(b["runs"] - b["finite"] for b in by_lr)
        if n_div:
            steps = [r["divergence_step"] for r in records if r["diverged"]]
            lrs_div = sorted({r["lr"] for r in records if r["diverged"]})
            parts.append(
                f"{n_div} runs diverged (at lr {', '.join(f'{x:g}' for x in lrs_div)}, by step "
                f"{max(steps)}); they are left out, so the kill regime is seen only in the runs "
                "that survived it."
            )
    q0 = np.array([x for r in records for x in (r.get("init_q") or []) if x is not None])
    q_rms = float(np.sqrt(q0.mean())) if q0.size else None
    s = sig(bias_all)
    parts.append(
        f"Bias init 0.01 vs 0: mean difference {_f(bias_all['mean'])} (95% CI "
        f"{_ci(bias_all['ci95'])}, {bias_all['n_pairs']} pairs) -> "
        + (
            "held: the small positive bias reduced dead units."
            if s < 0
            else "did not hold here: no significant reduction (a bias of 0.01 is small next "
            f"to the pre-activations' RMS at init, {_f(q_rms, 2)} over layers and runs)."
            if s == 0
            else "the opposite held here: more dead units with bias 0.01."
        )
    )
    for k, v in init_pairs.items():
        s = sig(v)
        parts.append(
            f"Init {k}: {_f(v['mean'])} (CI {_ci(v['ci95'])}) -> "
            + (
                "more dead units than He."
                if s > 0
                else "fewer than He."
                if s < 0
                else "no significant difference."
            )
        )
    verdict = " ".join(parts)

    setup = f"""
Sweep (`bench.reproduce._common.sweep`): ReLU MLP 40 -> {spec["width"]} x {spec["depth"]} -> 10 on
MNIST-1D, SGD, batch {spec["batch_size"]}, {spec["steps"]} steps; lr {spec["lr"]}; bias init
{spec["bias_init"]}; init {spec["init"]}; seeds {spec["seed"]}. `diagnostics = true`, every
{spec["diag_every"]} steps on the first {spec["diag_size"]} training examples: dead_fraction per
hidden layer = units whose relu derivative is 0 on every one of those examples (jax.nn's
relu'(0) = 0). A run's statistic: the mean of `final_dead_fraction` over the {spec["depth"]}
layers. Diverged runs (loss > 1e4 or not finite) are counted and left out of the statistics.

Command: `{ctx.command}`.
"""
    claim = """
The seed's slides (no source numbers): "large learning rates kill ReLUs" (a unit whose
pre-activation is negative on every input has zero gradient and never recovers), "a small
positive bias init (0.01) reduces dead units", and the init scheme (He-normal, Var W = 2/fan_in,
He et al. 2015, vs LeCun-normal Var W = 1/fan_in / Xavier Var W = 2/(fan_in + fan_out)) changes
how many die.
"""
    return write_report(
        ctx,
        title=TITLE,
        claim=claim,
        setup=setup,
        results_md=results_md,
        verdict=verdict,
        figures=figures,
        config=spec,
        data={
            "run_dir": str(run_dir),
            "cells": cells,
            "lr_pairs": lr_pairs,
            "by_lr": by_lr,
            "bias_pairs": {**bias_pairs, "all": bias_all},
            "init_pairs": init_pairs,
            "results_bytes": dir_size(ctx.out_dir),
        },
    )

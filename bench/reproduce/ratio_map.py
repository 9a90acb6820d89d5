"""Claim 2: the ReLU-vs-tanh speed ratio is not one number; it depends on depth and on the init
gain sigma_w, through the per-layer gradient factor chi_1 of each activation (mean field).

Measured: steps to a training-error target of relu and tanh MLPs on MNIST-1D over a grid of
depth x sigma_w (LeCun normal scaled by sigma_w, so Var W = sigma_w^2 / fan_in as in mean-field
theory), each activation at its own best lr per cell; the map of log2(tanh/relu) with the
chi_1 = 1 line of each activation (activations.theory.critical_sigma_w) drawn on it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench import summary
from bench.reproduce._common import (
    Context,
    clean,
    dir_size,
    fmt_ratio,
    fmt_steps,
    md_table,
    save_figure,
    slim_curves,
    sweep,
    write_report,
)

TITLE = "ReLU/tanh speed ratio over depth x init gain, against the chi_1 = 1 lines"

CLAIM = """
Krizhevsky et al. (2012) report one number, tanh/relu = **6** (steps to 25% training error,
4-layer CNN on CIFAR-10), and add that "the magnitude of the effect ... varies with network
architecture". Mean-field theory (Poole et al. 2016; Schoenholz et al. 2017) predicts where:
the mean squared back-propagated gradient changes by chi_1 = sigma_w^2 E[phi'(h)^2] per layer;
chi_1 < 1 (ordered phase) makes gradients vanish over a depth scale xi = -1/log chi_1, and
networks train up to roughly 6 xi layers (wording unverified). For ReLU chi_1 = sigma_w^2 / 2
(critical at sigma_w = sqrt 2, He init); for tanh with sigma_b = 0 the critical point is
sigma_w = 1 (LeCun init). The claim tested here: which activation trains faster depends on
(depth, sigma_w), and the boundary follows the chi_1 = 1 lines; the speed ratio is not a
constant 6.
"""


def _spec(ctx: Context) -> dict[str, Any]:
    return {
        "experiment": "ratio_map",
        "description": "relu vs tanh MLP, steps to target over depth x sigma_w",
        "dataset": ctx.pick(tiny="mnist1d", default="mnist1d", full="fashion-mnist"),
        "model": "mlp",
        "activation": ["relu", "tanh"],
        "depth": ctx.pick(tiny=[2], default=[2, 4, 8, 16], full=[2, 4, 8, 16, 32, 64]),
        "width": ctx.pick(tiny=16, default=32, full=256),
        "init": "lecun_normal",
        "init_scale": ctx.pick(
            tiny=[1.0, 2.0],
            default=[0.5, 1.0, 1.5, 2.0, 2.5],
            full=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0],
        ),
        "bias_init": 0.0,
        "optimizer": "sgd",
        "batch_size": ctx.pick(tiny=32, default=128, full=128),
        "steps": ctx.pick(tiny=20, default=800, full=5000),
        "eval_every": ctx.pick(tiny=10, default=20, full=100),
        "eval_size": ctx.pick(tiny=100, default=500, full=5000),
        "target": ctx.pick(tiny=0.85, default=0.5, full=0.2),
        "lr": ctx.pick(
            tiny=[0.1], default=[2.0, 0.6, 0.2, 0.06], full=[2.0, 1.0, 0.5, 0.2, 0.1, 0.03, 0.01]
        ),
        "seed": ctx.pick(tiny=[0], default=[0, 1, 2], full=[0, 1, 2, 3, 4]),
        "strategy": "auto",
    }


def six_xi(chi1: float) -> float:
    """6 xi = -6 / log chi_1, the depth the ordered phase still trains (inf at and above 1)."""
    return -6.0 / math.log(chi1) if 0 < chi1 < 1 else math.inf


def fmt_six_xi(chi1: float) -> str:
    return f"{six_xi(chi1):.3g}" if chi1 < 1 else ("critical" if chi1 == 1 else "chaotic")


def _cells(s_all, depths, scales):
    """(depth, sigma_w) -> summary setting."""
    out = {}
    for s in s_all["settings"]:
        out[s["setting"]["depth"], s["setting"]["init_scale"]] = s
    return {(d, w): out.get((d, w)) for d in depths for w in scales}


def _plot_map(ctx, cells, depths, scales, crit, chi_fn) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    z = np.full((len(depths), len(scales)), np.nan)
    text = np.full(z.shape, "", dtype=object)
    for i, d in enumerate(depths):
        for j, w in enumerate(scales):
            s = cells[d, w]
            rp = s and s["reference_pair"]
            if not rp:
                text[i, j] = "missing"
                continue
            if rp["ratio"] is None:
                text[i, j] = "both\ncensored"
                continue
            z[i, j] = math.log2(rp["ratio"])
            mark = {"exact": "", "lower": ">=", "upper": "<="}[rp["bound"]]
            text[i, j] = f"{mark}{rp['ratio']:.2g}"
    fig, ax = plt.subplots(figsize=(8, 5.5))
    lim = max(1.0, float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0)
    im = ax.imshow(
        z,
        origin="lower",
        aspect="auto",
        cmap="RdBu_r",
        norm=TwoSlopeNorm(0.0, -lim, lim),
        extent=(-0.5, len(scales) - 0.5, -0.5, len(depths) - 0.5),
    )
    for i in range(len(depths)):
        for j in range(len(scales)):
            censored = text[i, j] and (text[i, j][0] in "<>" or "censored" in text[i, j])
            if not np.isfinite(z[i, j]):
                ax.add_patch(
                    plt.Rectangle(
                        (j - 0.5, i - 0.5), 1, 1, fill=False, hatch="xx", color="gray", lw=0
                    )
                )
            ax.text(
                j,
                i,
                text[i, j],
                ha="center",
                va="center",
                fontsize=8,
                fontweight="bold" if not censored else "normal",
                fontstyle="italic" if censored else "normal",
            )
    # sigma_w -> x coordinate (the grid may be uneven): linear interpolation over the indices.
    xs = np.asarray(scales, float)

    def to_x(w):
        return float(np.interp(w, xs, np.arange(len(xs))))

    styles = {"relu": ("tab:orange", "-"), "tanh": ("tab:green", "--")}
    for act, w in crit.items():
        c, ls = styles[act]
        if np.isfinite(w) and xs[0] <= w <= xs[-1]:
            ax.axvline(
                to_x(w), color=c, ls=ls, lw=2.5, label=f"{act}: chi_1 = 1 (sigma_w = {w:.3g})"
            )
        # 6 xi: the depth up to which the ordered phase still trains (Schoenholz et al.)
        ws = np.linspace(xs[0], min(w, xs[-1]) if np.isfinite(w) else xs[-1], 60)[:-1]
        chis = np.asarray([chi_fn(act, v) for v in ws])
        with np.errstate(divide="ignore", invalid="ignore"):  # chi_1 >= 1: no depth scale
            six_xi = np.where(chis < 1, -6.0 / np.log(chis), np.inf)
            yd = np.interp(np.log2(six_xi), np.log2(depths), np.arange(len(depths)))
        ok = (six_xi >= depths[0]) & (six_xi <= depths[-1])
        if ok.any():
            ax.plot(
                [to_x(v) for v in ws[ok]],
                yd[ok],
                color=c,
                ls=":",
                lw=2,
                label=f"{act}: depth = 6 xi",
            )
    ax.set_xticks(range(len(scales)), [f"{w:g}" for w in scales])
    ax.set_yticks(range(len(depths)), [str(d) for d in depths])
    ax.set_xlabel("sigma_w  (Var W = sigma_w^2 / fan_in, sigma_b = 0)")
    ax.set_ylabel("depth (hidden layers)")
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("log2(tanh / relu steps to target)   red: ReLU faster, blue: tanh faster")
    ax.set_title("tanh/relu steps-to-target ratio; italic >= / <=: one side censored; hatched: n/a")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    return save_figure(ctx, fig, "ratio_map.png")


def _plot_steps(ctx, cells, depths, scales, budget) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, act in zip(axes, ("relu", "tanh"), strict=True):
        z = np.full((len(depths), len(scales)), np.nan)
        for i, d in enumerate(depths):
            for j, w in enumerate(scales):
                s = cells[d, w]
                g = s and s["groups"].get(act)
                if g:
                    m = g["median_steps"]
                    z[i, j] = m if m is not None else np.nan
                    ax.text(
                        j,
                        i,
                        fmt_steps(m, budget) + f"\n{g['n_reached']}/{g['n_seeds']}",
                        ha="center",
                        va="center",
                        fontsize=7,
                    )
        im = ax.imshow(
            z, origin="lower", aspect="auto", cmap="viridis", norm=LogNorm(10, max(budget, 11))
        )
        ax.set_xticks(range(len(scales)), [f"{w:g}" for w in scales])
        ax.set_yticks(range(len(depths)), [str(d) for d in depths])
        ax.set_xlabel("sigma_w")
        ax.set_ylabel("depth")
        ax.set_title(f"{act}: median steps to target at best lr (blank: censored)")
        fig.colorbar(im, ax=ax)
    return save_figure(ctx, fig, "steps_map.png")


def run(ctx: Context) -> dict[str, Any]:
    from activations import theory

    spec = _spec(ctx)
    run_dir, records = sweep(ctx, spec)
    slim_curves(run_dir)
    s_all = summary.summarize(records)
    depths, scales = spec["depth"], spec["init_scale"]
    budget, target = spec["steps"], spec["target"]
    cells = _cells(s_all, depths, scales)
    crit = {a: float(theory.critical_sigma_w(a, 0.0)) for a in ("relu", "tanh")}

    def chi_fn(act, w):
        return float(theory.chi1(act, float(w), 0.0))

    figs = [
        _plot_map(ctx, cells, depths, scales, crit, chi_fn),
        _plot_steps(ctx, cells, depths, scales, budget),
    ]

    rows, cell_data = [], []
    n_relu = n_tanh = n_tie = n_na = 0
    for d in depths:
        for w in scales:
            s = cells[d, w]
            if s is None:
                continue
            rp = s["reference_pair"]
            g = s["groups"]
            cr, ct = chi_fn("relu", w), chi_fn("tanh", w)
            r, ci = (rp or {}).get("ratio"), (rp or {}).get("ci")
            if r is None:
                winner = "n/a"
                n_na += 1
            elif ci and ci[0] is not None and ci[0] > 1 and rp["ci_bound"] in ("exact", "lower"):
                winner = "relu"
                n_relu += 1
            elif ci and ci[1] is not None and ci[1] < 1 and rp["ci_bound"] in ("exact", "upper"):
                winner = "tanh"
                n_tanh += 1
            elif r > 1 and rp["bound"] == "lower":
                winner = "relu"
                n_relu += 1
            elif r < 1 and rp["bound"] == "upper":
                winner = "tanh"
                n_tanh += 1
            else:
                winner = "unclear (CI includes 1)"
                n_tie += 1
            cell = {
                "six_xi_relu": six_xi(cr),
                "six_xi_tanh": six_xi(ct),
                "depth": d,
                "sigma_w": w,
                "ratio": rp,
                "winner": winner,
                "chi1_relu": cr,
                "chi1_tanh": ct,
            }
            for act in ("relu", "tanh"):
                ga = g.get(act)
                cell[act] = ga and {
                    k: ga[k] for k in ("best_lr", "median_steps", "n_reached", "n_seeds")
                }
            cell_data.append(cell)

            def st(act, ga=g):
                x = ga.get(act)
                if not x:
                    return "-"
                edge = "*" if ga[act]["best_lr_at_edge"] else ""
                return (
                    f"{fmt_steps(x['median_steps'], budget)} ({x['n_reached']}/{x['n_seeds']}, "
                    f"lr {x['best_lr']:g}{edge})"
                )

            rows.append(
                [
                    d,
                    f"{w:g}",
                    st("relu"),
                    st("tanh"),
                    fmt_ratio(rp),
                    winner,
                    f"{cr:.3g} / {fmt_six_xi(cr)}",
                    f"{ct:.3g} / {fmt_six_xi(ct)}",
                ]
            )
    table = md_table(
        [
            "depth",
            "sigma_w",
            "relu median steps (reached, best lr)",
            "tanh median steps (reached, best lr)",
            "tanh/relu [95% CI]",
            "faster (CI excludes 1)",
            "relu chi_1 / 6 xi",
            "tanh chi_1 / 6 xi",
        ],
        rows,
    )

    setup = f"""
Data: {spec["dataset"]}. Model: fully connected MLP of width {spec["width"]}, depths {depths}
(hidden layers), zero biases (sigma_b = 0). Init: LeCun normal times sigma_w
(`init = "lecun_normal"`, `init_scale = sigma_w`), i.e. Var W = sigma_w^2 / fan_in on every
layer, the mean-field parametrisation; sigma_w in {scales}. Optimiser: plain SGD, batch
{spec["batch_size"]}, {budget} steps, lr grid {spec["lr"]} tuned per activation per cell (best =
lowest median steps over seeds), seeds {spec["seed"]}. Target: {target:g} training error on the
first {spec["eval_size"]} training examples (evaluated every {spec["eval_every"]} steps): an MLP
on MNIST-1D reaches it in a few hundred steps when it trains well, so the map separates fast,
slow and stuck cells within the budget. Ratios and CIs: bench.summary (seed bootstrap,
censoring kept as bounds). Theory: chi_1 from activations.theory.chi1 at (sigma_w, 0);
critical sigma_w (chi_1 = 1): relu {crit["relu"]:.4g}, tanh {crit["tanh"]:.4g}
(activations.theory.critical_sigma_w). For relu with sigma_b = 0 the length map has q* = 0 or
inf, and chi_1 = sigma_w^2 / 2 at any q (ReLU is homogeneous); for tanh at sigma_w <= 1,
q* = 0 and chi_1 = sigma_w^2.
"""

    # Describe where each wins, from the measured cells only.
    def where(win):
        cs = [c for c in cell_data if c["winner"] == win]
        if not cs:
            return "nowhere"
        return ", ".join(f"(depth {c['depth']}, sigma_w {c['sigma_w']:g})" for c in cs)

    relu_cells = [c for c in cell_data if c["winner"] == "relu"]
    tanh_cells = [c for c in cell_data if c["winner"] == "tanh"]
    mean_w = {
        k: (float(np.mean([c["sigma_w"] for c in v])) if v else math.nan)
        for k, v in (("relu", relu_cells), ("tanh", tanh_cells))
    }
    rat = [c["ratio"]["ratio"] for c in cell_data if c["ratio"] and c["ratio"]["ratio"]]
    rng_txt = f"{min(rat):.2g} to {max(rat):.2g}" if rat else "n/a"
    both = [c for c in cell_data if c["winner"] == "n/a"]
    deep_ordered = [c for c in both if c["depth"] > max(c["six_xi_relu"], c["six_xi_tanh"])]
    # The rule of thumb "trainable up to ~6 xi layers" checked cell by cell, per activation.
    beyond: list[str] = []
    failed_inside: list[str] = []
    failed_chaotic: list[str] = []
    for c in cell_data:
        for act in ("relu", "tanh"):
            g = c[act] or {}
            lim = c[f"six_xi_{act}"]
            if g.get("n_reached") and c["depth"] > lim:
                beyond.append(f"{act} at (depth {c['depth']}, sigma_w {c['sigma_w']:g})")
            if g and not g.get("n_reached") and c["depth"] <= lim:
                where_ = f"{act} at (depth {c['depth']}, sigma_w {c['sigma_w']:g})"
                (failed_chaotic if c[f"chi1_{act}"] > 1 else failed_inside).append(where_)
    theory_txt = (
        f"Of the {len(both)} cells where neither activation reached the target, "
        f"{len(deep_ordered)} lie deeper than 6 xi of both activations (ordered phase: "
        "gradients vanish before they reach the first layers), as mean-field theory predicts; "
        f"in the other {len(both) - len(deep_ordered)} at least one activation is at or beyond "
        "the edge of chaos, where the ordered-phase argument predicts no failure and the "
        "obstacle is the step budget of plain SGD or exploding gradients (chi_1 > 1). "
        "Rule of thumb 'trains up to about 6 xi layers', per activation and cell: reached the "
        f"target although deeper than 6 xi: {', '.join(beyond) or 'none'}; failed in the "
        f"ordered phase within 6 xi or at chi_1 = 1: {', '.join(failed_inside) or 'none'}; "
        f"failed in the chaotic phase (chi_1 > 1, gradients and, for relu, activations grow "
        f"with depth): {', '.join(failed_chaotic) or 'none'}."
    )
    verdict = f"""
Of {len(cell_data)} cells, ReLU is faster in {n_relu}, tanh in {n_tanh}; in {n_tie} the CI
includes 1 and in {n_na} both activations were censored (neither reached {target:g} in
{budget} steps at any lr). Measured tanh/relu ratios range over {rng_txt}: the ratio is not
a constant (the published 6 is one point of such a map, for a CNN on CIFAR-10).

ReLU faster at: {where("relu")}.

tanh faster at: {where("tanh")}.

{theory_txt}

Mean sigma_w of the cells each wins: ReLU {mean_w["relu"]:.3g}, tanh {mean_w["tanh"]:.3g}
(critical sigma_w: relu {crit["relu"]:.3g}, tanh {crit["tanh"]:.3g}). Reading against chi_1:
below sigma_w = 1 both are in the ordered phase, relu more deeply (chi_1 = sigma_w^2/2 vs
sigma_w^2), so gradients vanish faster for relu as depth grows; between 1 and sqrt 2 tanh is
chaotic but bounded while relu is still ordered; above sqrt 2 relu is chaotic and, being
unbounded, its activations and gradients grow as chi_1^depth, which SGD survives only with a
small lr. Whether the measured cells follow this is in the table (chi_1 columns) and the map
(lines: chi_1 = 1; dotted: depth = 6 xi of the ordered phase). Conditions: MLP width
{spec["width"]}, plain SGD, {len(spec["lr"])}-value lr grid, {len(spec["seed"])} seeds: coarse;
cells whose best lr is at the grid edge may change with a wider grid.
"""
    data = {
        "cells": cell_data,
        "critical_sigma_w": crit,
        "counts": {"relu": n_relu, "tanh": n_tanh, "unclear": n_tie, "both_censored": n_na},
        "target": target,
        "steps": budget,
        "run_dir": str(run_dir),
        "results_bytes": dir_size(ctx.out_dir),
    }
    results_md = table + "\n\n" + summary._LEGEND
    return write_report(
        ctx,
        title=TITLE,
        claim=CLAIM,
        setup=setup,
        results_md=results_md,
        verdict=verdict,
        figures=figs,
        config=spec,
        data=clean(data),
    )

"""Claim 2: the ReLU-vs-tanh speed ratio is not one number; it depends on depth and on the init
gain sigma_w, through the per-layer gradient factor chi_1 of each activation (mean field).

Measured (``bench.protocol``): relu and tanh MLPs on MNIST-1D over a grid of depth x sigma_w
(LeCun normal scaled by sigma_w, so Var W = sigma_w^2 / fan_in as in mean-field theory); in
each cell each activation's lr is tuned on tuning seeds by a bracketing search, then steps to a
training-error target are measured on 8 fresh seeds; the map of log2(tanh/relu) (KM medians,
paired seed-bootstrap CI) with the chi_1 = 1 line of each activation
(activations.theory.critical_sigma_w) drawn on it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench import summary
from bench.reproduce._common import (
    HELD,
    INCONCLUSIVE,
    NOT_HELD,
    Context,
    clean,
    dir_size,
    fmt_ratio,
    fmt_steps,
    km,
    md_table,
    pick,
    protocol_block,
    protocol_md,
    ratio,
    save_figure,
    select,
    side,
    slim_stages,
    tuned_sweep,
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


def spec(size: str, data_dir: str | None = None) -> dict[str, Any]:
    """The sweep: relu and tanh MLPs over depth x sigma_w, lr tuned per cell and activation."""
    return {
        "experiment": "ratio_map",
        "description": "relu vs tanh MLP, steps to target over depth x sigma_w",
        "dataset": pick(size, tiny="mnist1d", default="mnist1d", full="fashion-mnist"),
        "model": "mlp",
        "activation": ["relu", "tanh"],
        "depth": pick(size, tiny=[2], default=[2, 4, 8, 16], full=[2, 4, 8, 16, 32, 64]),
        "width": pick(size, tiny=16, default=128, full=256),
        "init": "lecun_normal",
        "init_scale": pick(
            size,
            tiny=[1.0, 2.0],
            default=[0.5, 1.0, 1.5, 2.0, 2.5],
            full=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0],
        ),
        "bias_init": 0.0,
        "optimizer": "sgd",
        "batch_size": pick(size, tiny=32, default=128, full=128),
        "steps": pick(size, tiny=20, default=800, full=5000),
        "eval_every": pick(size, tiny=10, default=20, full=100),
        "eval_size": pick(size, tiny=100, default=500, full=5000),
        "target": pick(size, tiny=0.85, default=0.5, full=0.2),
        "lr": pick(
            size,
            tiny=[0.1],
            default=[0.6, 0.2, 0.06, 0.02],
            full=[2.0, 1.0, 0.5, 0.2, 0.1, 0.03, 0.01],
        ),
        "protocol": "tuned",
        # 4 lrs x 2 tuning seeds = 8 lanes, as many as the measurement seeds: the two stages
        # share one compiled program per (activation, depth)
        "tuning_seeds": pick(size, tiny=[1000], default=[1000, 1001], full=[1000, 1001, 1002]),
        # up to three extensions per side, so that every cell that trains at all ends with
        # its lr bracketed (the summary flags every bracket left open)
        "lr_extensions": pick(size, tiny=0, default=3, full=3),
        "seed": pick(size, tiny=[0, 1], default=list(range(8)), full=list(range(8))),
        "early_exit": 2,  # only steps to target is measured
        "strategy": "auto",
    }


def six_xi(chi1: float) -> float:
    """6 xi = -6 / log chi_1, the depth the ordered phase still trains (inf at and above 1)."""
    return -6.0 / math.log(chi1) if 0 < chi1 < 1 else math.inf


def fmt_six_xi(chi1: float) -> str:
    return f"{six_xi(chi1):.3g}" if chi1 < 1 else ("critical" if chi1 == 1 else "chaotic")


# --------------------------------------------------------------------------- analysis (pure)


def winner(r: dict[str, Any] | None) -> str:
    """The faster activation of a cell from its tanh/relu ratio: "relu" when the 95% CI lies
    above 1, "tanh" below 1, "unclear" when it includes 1, "undetermined" without a ratio."""
    if not r or r["ratio"] is None:
        return "undetermined"
    return {1: "relu", -1: "tanh", 0: "unclear"}[side(r["ci"], 1.0, r["ci_bound"])]


def _counts(cells: list[dict[str, Any]]) -> dict[str, int]:
    out = {"relu": 0, "tanh": 0, "unclear": 0, "undetermined": 0}
    for c in cells:
        out[winner(c["ratio"])] += 1
    return out


def analyse(records: list[dict[str, Any]], p: dict[str, Any], sp: dict[str, Any]) -> dict[str, Any]:
    """Records of the tuned sweep and the protocol's summary -> per (depth, sigma_w) cell each
    activation's tuned lr and KM median steps, the paired ratio tanh/relu and which is faster
    (the CI of the ratio excludes 1)."""
    from activations import theory

    meas = [r for r in records if r["stage"] == "measure"]
    rows = {(x["activation"], x["depth"], x["init_scale"]): x for x in p["settings"]}
    cells = []
    for d in sp["depth"]:
        for w in sp["init_scale"]:
            cell: dict[str, Any] = {"depth": d, "sigma_w": w}
            for a in ("relu", "tanh"):
                row = rows.get((a, d, w))
                chi = float(theory.chi1(a, float(w), 0.0))
                cell[f"chi1_{a}"] = chi
                cell[f"six_xi_{a}"] = six_xi(chi)
                cell[a] = row and {
                    "lr": row["lr"],
                    "bracket_closed": row["bracket"]["closed"],
                    **km(select(meas, activation=a, depth=d, init_scale=w)),
                }
            num = select(meas, activation="tanh", depth=d, init_scale=w)
            den = select(meas, activation="relu", depth=d, init_scale=w)
            cell["ratio"] = ratio(num, den) if num and den else None
            cell["winner"] = winner(cell["ratio"])
            cells.append(cell)
    return {
        "target": sp["target"],
        "steps": sp["steps"],
        "width": sp.get("width"),
        "cells": cells,
        "counts": _counts(cells),
        "largest_ratio_cell": (
            None
            if (top := largest(cells)) is None
            else {"depth": top["depth"], "sigma_w": top["sigma_w"], "ratio": top["ratio"]}
        ),
        "critical_sigma_w": {a: float(theory.critical_sigma_w(a, 0.0)) for a in ("relu", "tanh")},
        "protocol": protocol_block(p),
    }


def largest(cells: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The cell with the largest measured tanh/relu (point estimate), None when no cell has one."""
    have = [c for c in cells if c["ratio"] and c["ratio"]["ratio"] is not None]
    return max(have, key=lambda c: c["ratio"]["ratio"]) if have else None


def verdict(s: dict[str, Any]) -> tuple[str, str]:
    """Held when ReLU is measurably faster in some cell and tanh in another (the winner depends
    on the cell); not held when every cell has a measured winner and it is the same one;
    inconclusive otherwise (cells whose CI includes 1 could go either way)."""
    c = _counts(s["cells"])
    n = sum(c.values())
    if c["relu"] and c["tanh"]:
        st = HELD
        head = "which activation is faster depends on the cell"
    elif c["unclear"] == c["undetermined"] == 0 and (c["relu"] == n or c["tanh"] == n):
        st = NOT_HELD
        head = f"{'ReLU' if c['relu'] else 'tanh'} is measurably faster in every cell"
    else:
        st = INCONCLUSIVE
        one = "ReLU" if c["relu"] else "tanh" if c["tanh"] else None
        head = (
            f"only {one} is measurably faster anywhere" if one else "no cell has a measured winner"
        ) + ", and the cells whose CI includes 1 (or whose ratio is undetermined) leave open "
        head += "whether the other wins somewhere"
    ratios = [x["ratio"]["ratio"] for x in s["cells"] if x["ratio"] and x["ratio"]["ratio"]]
    span = f"{min(ratios):.2g} to {max(ratios):.2g}" if ratios else "n/a"
    top = largest(s["cells"])
    if top is not None:
        span += (
            f"; the largest, {fmt_ratio(top['ratio'])}, at depth {top['depth']}, "
            f"sigma_w {top['sigma_w']:g}"
        )
    text = (
        f"Of {n} cells, ReLU is measurably faster (95% CI of tanh/relu above 1) in {c['relu']}, "
        f"tanh in {c['tanh']}; in {c['unclear']} the CI includes 1 and in {c['undetermined']} "
        f"the ratio is undetermined (both medians censored): {head}. Measured tanh/relu ratios "
        f"range over {span}."
    )
    return st, text


def answer(s: dict[str, Any]) -> str:
    """The report's opening paragraph, from the summary's numbers."""
    c = _counts(s["cells"])
    n = sum(c.values())
    brackets = s["protocol"]["brackets"]
    open_ = sum(not b["closed"] for b in brackets)
    top = s["largest_ratio_cell"]
    where = (
        f"The largest measured tanh/relu is {fmt_ratio(top['ratio'])} at depth {top['depth']}, "
        f"sigma_w {top['sigma_w']:g}."
        if top
        else "No cell has a measured ratio."
    )
    return (
        f"Is tanh/relu one number? Over {n} (depth, sigma_w) cells of a width-{s['width']} MLP, "
        f"each activation at its own tuned lr, ReLU is measurably faster (95% CI of tanh/relu "
        f"above 1) in {c['relu']} cells and tanh in {c['tanh']}; {c['unclear']} cells have a CI "
        f"that includes 1 and {c['undetermined']} no ratio (neither reaches the target). {where} "
        f"The lr bracket closed in {len(brackets) - open_} of {len(brackets)} (cell, "
        f"activation) settings; the open ones are marked * below (mostly cells where no lr "
        f"trains). The chi_1 = 1 lines (relu sigma_w = {s['critical_sigma_w']['relu']:.3g}, "
        f"tanh {s['critical_sigma_w']['tanh']:.3g}) are drawn on the map."
    )


def _plot_map(ctx, cells, depths, scales, crit, chi_fn) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    z = np.full((len(depths), len(scales)), np.nan)
    text = np.full(z.shape, "", dtype=object)
    for i, d in enumerate(depths):
        for j, w in enumerate(scales):
            s = cells[d, w]
            rp = s and s["ratio"]
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
            elif winner(cells[depths[i], scales[j]]["ratio"]) == "unclear":
                ax.add_patch(  # the 95% CI includes 1: no measured winner
                    plt.Rectangle(
                        (j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//", color="0.4", lw=0
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
    ax.set_title(
        "tanh/relu steps to target; italic >= / <=: one side censored; "
        "// : 95% CI includes 1; xx: n/a",
        fontsize=9,
    )
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
                g = s and s.get(act)
                if g:
                    m = g["median"]
                    z[i, j] = m if m is not None else np.nan
                    ax.text(
                        j,
                        i,
                        fmt_steps(m, budget) + f"\n{g['reached']}/{g['n']}",
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
        ax.set_title(f"{act}: KM median steps to target at the tuned lr (blank: not reached)")
        fig.colorbar(im, ax=ax)
    return save_figure(ctx, fig, "steps_map.png")


# --------------------------------------------------------------------------- report


def report(ctx: Context, sp: dict[str, Any], s: dict[str, Any], figs: list[str]) -> dict[str, Any]:
    """REPORT.md and summary.json from the summary (every number in the text comes from it)."""
    budget, target, crit = s["steps"], s["target"], s["critical_sigma_w"]
    cells = s["cells"]

    def st(a: dict[str, Any] | None) -> str:
        if not a:
            return "-"
        edge = "" if a["bracket_closed"] else "*"
        return f"{fmt_steps(a['median'], budget)} ({a['reached']}/{a['n']}, lr {a['lr']:g}{edge})"

    rows = [
        [
            c["depth"],
            f"{c['sigma_w']:g}",
            st(c["relu"]),
            st(c["tanh"]),
            fmt_ratio(c["ratio"]),
            c["winner"],
            f"{c['chi1_relu']:.3g} / {fmt_six_xi(c['chi1_relu'])}",
            f"{c['chi1_tanh']:.3g} / {fmt_six_xi(c['chi1_tanh'])}",
        ]
        for c in cells
    ]
    table = md_table(
        [
            "depth",
            "sigma_w",
            "relu KM median steps (reached, tuned lr)",
            "tanh KM median steps (reached, tuned lr)",
            "tanh/relu [95% CI]",
            "faster (CI excludes 1)",
            "relu chi_1 / 6 xi",
            "tanh chi_1 / 6 xi",
        ],
        rows,
    )
    setup = f"""
Data: {sp["dataset"]}. Model: fully connected MLP of width {sp["width"]}, depths {sp["depth"]}
(hidden layers), zero biases (sigma_b = 0). Init: LeCun normal times sigma_w
(`init = "lecun_normal"`, `init_scale = sigma_w`), i.e. Var W = sigma_w^2 / fan_in on every
layer, the mean-field parametrisation; sigma_w in {sp["init_scale"]}. Optimiser: plain SGD, batch
{sp["batch_size"]}, {budget} steps. Target: {target:g} training error on the first
{sp["eval_size"]} training examples (evaluated every {sp["eval_every"]} steps; a run stops once
its error has been at or below it for {sp["early_exit"]} evaluations in a row): an MLP on
MNIST-1D reaches it in a few hundred steps when it trains well, so the map separates fast, slow
and stuck cells within the budget.

{protocol_md(s["protocol"])}

Theory: chi_1 from activations.theory.chi1 at (sigma_w, 0); critical sigma_w (chi_1 = 1): relu
{crit["relu"]:.4g}, tanh {crit["tanh"]:.4g} (activations.theory.critical_sigma_w). For relu
with sigma_b = 0, chi_1 = sigma_w^2 / 2 at any q (ReLU is homogeneous); for tanh at
sigma_w <= 1, q* = 0 and chi_1 = sigma_w^2.
"""

    def where(win: str) -> str:
        cs = [c for c in cells if c["winner"] == win]
        return ", ".join(f"(depth {c['depth']}, sigma_w {c['sigma_w']:g})" for c in cs) or "nowhere"

    # The rule of thumb "trainable up to ~6 xi layers", checked cell by cell per activation.
    beyond: list[str] = []
    failed_inside: list[str] = []
    failed_chaotic: list[str] = []
    for c in cells:
        for act in ("relu", "tanh"):
            g = c[act] or {}
            here = f"{act} at (depth {c['depth']}, sigma_w {c['sigma_w']:g})"
            if g.get("median") is not None and c["depth"] > c[f"six_xi_{act}"]:
                beyond.append(here)
            if g and g.get("median") is None and c["depth"] <= c[f"six_xi_{act}"]:
                (failed_chaotic if c[f"chi1_{act}"] > 1 else failed_inside).append(here)
    status_, head = verdict(s)
    verdict_md = f"""
**{status_.capitalize()}.** {head} The published 6 is one point of such a map, for a CNN on
CIFAR-10.

ReLU faster at: {where("relu")}.

tanh faster at: {where("tanh")}.

Rule of thumb 'trains up to about 6 xi layers' (KM median reached on the measurement seeds),
per activation and cell: reached although deeper than 6 xi: {", ".join(beyond) or "none"};
not reached in the ordered phase within 6 xi or at chi_1 = 1: {", ".join(failed_inside) or "none"};
not reached in the chaotic phase (chi_1 > 1): {", ".join(failed_chaotic) or "none"}.

Reading against chi_1: below sigma_w = 1 both are in the ordered phase, relu more deeply
(chi_1 = sigma_w^2/2 vs sigma_w^2), so gradients vanish faster for relu as depth grows; between
1 and sqrt 2 tanh is chaotic but bounded while relu is still ordered; above sqrt 2 relu is
chaotic and, being unbounded, its activations and gradients grow as chi_1^depth, which SGD
survives only with a small lr. Conditions: MLP width {sp["width"]}, plain SGD,
{len(s["protocol"]["measurement_seeds"])} measurement seeds per cell; * marks a tuned lr whose
bracket stayed open after {s["protocol"]["lr_extensions"]} extension(s) per side.
"""
    data = {**s, "status": status_, "results_bytes": dir_size(ctx.out_dir)}
    return write_report(
        ctx,
        title=TITLE,
        claim=CLAIM,
        setup=setup,
        results_md=table + "\n\n" + summary._LEGEND,
        verdict=verdict_md,
        figures=figs,
        config=sp,
        data=clean(data),
        answer=answer(s),
    )


def run(ctx: Context) -> dict[str, Any]:
    from activations import theory

    sp = spec(ctx.size, ctx.data_dir)
    t = tuned_sweep(ctx, sp)
    slim_stages(t)
    s = analyse(t.records, t.protocol, sp)
    s["run_dir"] = str(t.root)
    depths, scales = sp["depth"], sp["init_scale"]
    cells = {(c["depth"], c["sigma_w"]): c for c in s["cells"]}

    def chi_fn(act: str, w: float) -> float:
        return float(theory.chi1(act, float(w), 0.0))

    figs = [
        _plot_map(ctx, cells, depths, scales, s["critical_sigma_w"], chi_fn),
        _plot_steps(ctx, cells, depths, scales, sp["steps"]),
    ]
    return report(ctx, sp, s, figs)

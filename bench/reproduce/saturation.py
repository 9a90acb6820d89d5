"""Claim 8 (the seed's slides): saturating and non-zero-centred activations train slower.

Sigmoid vs tanh vs ReLU hidden layers in the same MLP on MNIST-1D, each at its own best
learning rate (``bench.summary``: lowest median steps to a training-error target over seeds),
with ``diagnostics = true``:

- saturation: ``saturation_fraction``, the share of (example, unit) pairs with
  ``|phi'(h)| < 1%`` of its maximum (relu's zero side counts: its derivative is 0 there);
- zero-centring: ``same_sign_fraction``, the share of (example, unit) pairs whose incoming
  weight gradients all have one sign. The per-example gradient of unit j is ``a * delta_j``,
  so this is 1 whenever the layer's input ``a`` is all of one sign: after sigmoid (outputs in
  (0, 1)) and after relu (outputs >= 0; the zero inputs give zero gradient entries) alike.
  Layer 1 sees the data, which are centred, so only layers 2.. carry the activation's effect;
- speed: steps to the target, median over seeds with a bootstrap CI, and the ratios of the
  medians (``bench.summary``'s seed bootstrap) against relu.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench import summary
from bench.reproduce._common import (
    Context,
    boot_ci,
    dir_size,
    fmt_ratio,
    md_table,
    save_figure,
    slim_curves,
    sweep,
    write_report,
)
from bench.reproduce._common import fmt_num as _f

TITLE = "Saturation and zero-centring: sigmoid vs tanh vs ReLU"

ACTS = ("sigmoid", "tanh", "relu")
DIAG_KEEP = ("saturation_fraction", "same_sign_fraction", "act_mean", "sparsity")


def _spec(ctx: Context) -> dict[str, Any]:
    steps = ctx.pick(tiny=20, default=2500, full=10000)
    every = ctx.pick(tiny=10, default=50, full=100)
    return {
        "experiment": "saturation",
        "dataset": "mnist1d",
        "activation": list(ACTS),
        "depth": 4,
        "width": ctx.pick(tiny=16, default=128, full=256),
        "init": "lecun_normal",
        "optimizer": "sgd",
        "batch_size": ctx.pick(tiny=16, default=64, full=128),
        "steps": steps,
        "lr": ctx.pick(
            tiny=[0.1, 1.0],
            default=[0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
            full=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
        ),
        "seed": list(range(ctx.pick(tiny=2, default=4, full=10))),
        "eval_every": every,
        "eval_size": ctx.pick(tiny=64, default=1000, full=1000),
        "target": ctx.pick(tiny=0.8, default=0.4, full=0.3),
        "diagnostics": True,
        "diag_every": ctx.pick(tiny=10, default=250, full=500),
        "diag_size": ctx.pick(tiny=64, default=512, full=1000),
    }


def _finite(ci: tuple[float, float] | None) -> list[float | None] | None:
    return None if ci is None else [x if math.isfinite(x) else None for x in ci]


def _ci(ci: Any, d: int = 3) -> str:
    if ci is None:
        return "-"
    return (
        "["
        + ", ".join("censored" if x is None or not math.isfinite(x) else _f(x, d) for x in ci)
        + "]"
    )


def _layers(records: list[dict], key: str) -> np.ndarray:
    """(runs, L) of a per-layer record list (null -> NaN)."""
    rows = [[math.nan if x is None else float(x) for x in r.get(key) or []] for r in records]
    return np.array(rows, np.float64)


def _nanmed(a: np.ndarray, axis: int = 0) -> list[float | None]:
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            m = np.nanmedian(a, axis=axis)
    return [None if not math.isfinite(x) else float(x) for x in np.atleast_1d(m)]


def _plot(ctx: Context, spec: dict, s: dict, curves: dict, best: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    ax = axes[0]
    for act in ACTS:
        rows = curves.get(act, [])
        if not rows:
            continue
        steps = rows[0]["eval_steps"]
        ys = np.stack([r["eval_error"] for r in rows])
        (line,) = ax.plot(steps, np.nanmedian(ys, 0), label=f"{act} (lr {best[act]:g})")
        ax.fill_between(
            steps, np.nanmin(ys, 0), np.nanmax(ys, 0), color=line.get_color(), alpha=0.2, lw=0
        )
    ax.axhline(spec["target"], color="k", ls="--", lw=1, label=f"target {spec['target']:g}")
    ax.set(xlabel="step", ylabel="training error (eval subset)", title="at each best lr")
    ax.legend(fontsize=8)
    # Same-sign fraction at the end, per layer (constant in time: a bar chart reads better).
    ax = axes[2]
    for i, act in enumerate(ACTS):
        rows = curves.get(act, [])
        if not rows:
            continue
        arr = np.stack([r["diag_same_sign_fraction"][-1] for r in rows])  # (S, L)
        med = np.nanmedian(arr, 0)
        x = np.arange(1, med.size + 1) + (i - 1) * 0.27
        ax.bar(x, med, width=0.25, color=f"C{i}", label=act)
    ax.set(
        xlabel="hidden layer (1 sees the data)",
        ylabel="fraction",
        title="same-sign incoming weight gradients, end",
        ylim=(0, 1.05),
        xticks=np.arange(1, spec["depth"] + 1),
    )
    ax.legend(fontsize=8)
    for ax, key, title in ((axes[1], "saturation_fraction", "saturated (example, unit) pairs"),):
        for i, act in enumerate(ACTS):
            rows = curves.get(act, [])
            if not rows:
                continue
            steps = rows[0]["diag_steps"]
            arr = np.stack([r[f"diag_{key}"] for r in rows])  # (S, D, L)
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    med = np.nanmedian(arr, 0)
            for layer in range(med.shape[1]):
                ax.plot(
                    steps,
                    med[:, layer],
                    color=f"C{i}",
                    lw=1.2,
                    alpha=1.0 - 0.18 * layer,
                    ls=("-", "--", "-.", ":")[layer % 4],
                    label=f"{act} L{layer + 1}",
                )
        ax.set(xlabel="step", title=title, ylim=(-0.03, 1.03))
        ax.legend(fontsize=6, ncol=3)
    fig.suptitle("Median over seeds at each activation's best lr (line style = layer)")
    return [save_figure(ctx, fig, "saturation.png")]


def run(ctx: Context) -> dict[str, Any]:
    spec = _spec(ctx)
    run_dir, records = sweep(ctx, spec)
    slim_curves(
        run_dir,
        keep=(
            "config_ids",
            "eval_steps",
            "eval_error",
            "diag_steps",
            *(f"diag_{m}" for m in DIAG_KEEP),
        ),
    )
    s = summary.summarize(records, by=("activation",), reference=("sigmoid", "relu"))
    (setting,) = s["settings"]
    groups = setting["groups"]
    by_id = {r["config_id"]: r for r in records}

    # Curves at each best lr.
    _, all_curves = summary.load_run(run_dir)
    best = {act: groups[act]["best_lr"] for act in ACTS if act in groups}
    curves = {
        act: [all_curves[c] for c in groups[act]["config_ids"] if c in all_curves] for act in best
    }
    figures = _plot(ctx, spec, s, curves, best)

    rows, cells = [], {}
    budget = spec["steps"]
    for act in ACTS:
        g = groups.get(act)
        if g is None:
            continue
        recs = [by_id[c] for c in g["config_ids"] if not by_id[c]["diverged"]]
        vals = [math.inf if v is None else v for v in g["steps_to_target"]]
        c = {
            "best_lr": g["best_lr"],
            "best_lr_at_edge": g["best_lr_at_edge"],
            "median_steps": g["median_steps"],
            # JSON has no inf: a censored CI end is None ("censored" in the table)
            "median_steps_ci95": _finite(boot_ci(vals, "median")),
            "n_reached": g["n_reached"],
            "n_seeds": g["n_seeds"],
            "final_train_error": g["mean_final_error"],
        }
        for key in ("saturation_fraction", "same_sign_fraction", "sparsity", "act_mean"):
            for when in ("init", "final"):
                c[f"{when}_{key}"] = _nanmed(_layers(recs, f"{when}_{key}"))
        # Layers 2..L: inputs are the previous activations (layer 1 sees the data).
        ss = _layers(recs, "final_same_sign_fraction")[:, 1:]
        ss_i = _layers(recs, "init_same_sign_fraction")[:, 1:]
        sat = _layers(recs, "final_saturation_fraction")
        c["same_sign_upper_init_mean"] = _f(float(np.nanmean(ss_i))) if ss_i.size else "n/a"
        c["same_sign_upper_final_mean"] = _f(float(np.nanmean(ss))) if ss.size else "n/a"
        c["saturation_final_mean"] = float(np.nanmean(sat)) if sat.size else None
        c["saturation_final_ci95"] = (
            boot_ci(np.nanmean(sat, 1).tolist(), "mean") if sat.size else None
        )
        cells[act] = c
        rows.append(
            [
                act,
                f"{g['best_lr']:g}" + (" (grid edge)" if g["best_lr_at_edge"] else ""),
                f"{g['n_reached']}/{g['n_seeds']}",
                (_f(g["median_steps"], 4) if g["median_steps"] else f">{budget}")
                + f" {_ci(c['median_steps_ci95'], 4)}",
                ", ".join(_f(x, 2) for x in c["init_saturation_fraction"]),
                ", ".join(_f(x, 2) for x in c["final_saturation_fraction"]),
                ", ".join(_f(x, 2) for x in c["init_same_sign_fraction"]),
                ", ".join(_f(x, 2) for x in c["final_same_sign_fraction"]),
                ", ".join(_f(x, 2) for x in c["final_sparsity"]),
            ]
        )
    table = md_table(
        [
            "activation",
            "best lr",
            "reached",
            "median steps to target [95% CI]",
            "saturation at init (L1..L4)",
            "saturation at end",
            "same-sign at init",
            "same-sign at end",
            "exact zeros at end",
        ],
        rows,
    )
    ratios = {
        f"{r['numerator']}/{r['denominator']}": r
        for r in setting["pairs"]
        if r["denominator"] == "relu" or r["numerator"] == "relu"
    }
    ratio_rows = [[k, fmt_ratio(r), r["bound"]] for k, r in ratios.items()]
    # Also sigmoid vs tanh (zero-centred, same shape): the cleanest test of centring.
    st = next(
        (r for r in setting["pairs"] if {r["numerator"], r["denominator"]} == {"sigmoid", "tanh"}),
        None,
    )
    if st is not None:
        ratio_rows.append(
            [
                f"{st['numerator']}/{st['denominator']}",
                fmt_ratio(st),
                st["bound"],
            ]
        )
    ratio_table = md_table(["ratio of median steps", "value [95% CI]", "bound"], ratio_rows)

    results_md = (
        "Published: no numbers for this MLP; the seed's slides state the direction (sigmoid "
        "saturates and is not zero-centred, so its next layer's weight gradients all share "
        "one sign per example and SGD zig-zags; tanh is centred; relu does not saturate on "
        "its positive side). Per-layer entries are medians over the seeds at the best lr.\n\n"
        + table
        + "\n\nSteps-to-target ratios at each activation's best lr (`bench.summary`: seed "
        "bootstrap 95% CI; 'lower' = at least the value because the numerator's median is "
        "censored):\n\n" + ratio_table
    )

    # ---- verdict
    parts = []
    ss = {a: cells[a]["same_sign_upper_final_mean"] for a in cells}
    ssi = {a: cells[a]["same_sign_upper_init_mean"] for a in cells}
    parts.append(
        "Zero-centring: the same-sign fraction of layers 2-4 (inputs = previous activations) "
        f"was {', '.join(f'{a} {ssi[a]} at init / {ss[a]} at the end' for a in cells)}."
    )

    def one(a: str) -> bool:
        v = cells.get(a, {}).get("same_sign_upper_final_mean", "n/a")
        return v != "n/a" and float(v) >= 0.99

    if one("sigmoid"):
        parts.append(
            "Sigmoid's is 1, as the claim says: its outputs are all positive, so every "
            "example pushes all of a unit's incoming weights the same way."
        )
    if one("relu"):
        parts.append(
            "ReLU's is 1 too: its outputs are >= 0 (the zeros only drop gradient entries), so "
            "relu is no more zero-centred than sigmoid in this sense"
            + (f"; tanh, centred, is at {ss['tanh']}." if not one("tanh") else ".")
        )
    sat_txt = ", ".join(
        f"{a} {_f(c['saturation_final_mean'], 2)} {_ci(c['saturation_final_ci95'], 2)}"
        for a, c in cells.items()
    )
    parts.append(
        f"Saturation at the end of training (mean over layers and seeds, 95% CI): {sat_txt}; "
        "relu's count is its zero side (derivative 0), not a squashing tail."
    )
    order = sorted(
        cells,
        key=lambda a: math.inf if cells[a]["median_steps"] is None else cells[a]["median_steps"],
    )
    speed = ", ".join(
        f"{a} " + (_f(m, 4) if (m := cells[a]["median_steps"]) else f">{budget}") for a in order
    )
    parts.append(f"Speed (median steps to {spec['target']:g} training error): {speed}.")
    if st is not None and st["ratio"] is None:
        parts.append(
            "Sigmoid vs tanh: undetermined, neither reached the target at its best lr "
            f"within {budget} steps."
        )
    elif st is not None and st["ci"] is not None:
        lo, hi = st["ci"]
        num = st["numerator"]
        slower = (num == "sigmoid" and lo is not None and lo > 1) or (
            num == "tanh" and hi is not None and hi < 1
        )
        parts.append(
            "Sigmoid was "
            + ("significantly slower than tanh" if slower else "not significantly slower than tanh")
            + f" (ratio {num}/{st['denominator']} {fmt_ratio(st)})"
            + (", consistent with the claim." if slower else ", so the claim did not hold here.")
        )
    for k, r in ratios.items():
        if r["ratio"] is None or r["ci"] is None:
            continue
        lo, hi = r["ci"]
        side = (
            f"{r['denominator']} faster"
            if lo is not None and lo > 1
            else f"{r['numerator']} faster"
            if hi is not None and hi < 1
            else "no significant difference"
        )
        parts.append(f"{k} = {fmt_ratio(r)}: {side}.")
    edge = [a for a in cells if cells[a]["best_lr_at_edge"]]
    if edge:
        parts.append(
            f"Best lr at the grid's edge for {', '.join(edge)}: the grid may be too narrow there."
        )
    verdict = " ".join(parts)

    setup = f"""
Sweep: MLP 40 -> {spec["width"]} x {spec["depth"]} -> 10 on MNIST-1D, {", ".join(ACTS)}, init
{spec["init"]}, zero biases, SGD, batch {spec["batch_size"]}, {spec["steps"]} steps, lr
{spec["lr"]}, seeds {spec["seed"]}. Target: {spec["target"]:g} training error on the first
{spec["eval_size"]} training examples, measured every {spec["eval_every"]} steps. Best lr per
activation and the ratios: `bench.summary.summarize` (lowest median steps over seeds; censored
runs rank last; seed-bootstrap CIs). `diagnostics = true` every {spec["diag_every"]} steps on the
first {spec["diag_size"]} training examples: saturation_fraction (|phi'(h)| < 1% of max phi'),
same_sign_fraction (per example and unit, all incoming weight gradients of one sign, among those
not all zero), sparsity (exact zeros of phi(h)). CI of a median: percentile bootstrap over seeds.

Command: `{ctx.command}`.
"""
    claim = """
The seed's slides: sigmoid units saturate (phi' = phi(1 - phi) <= 1/4 and ~0 in both tails,
so gradients vanish) and their outputs are all positive, so for each example the gradients of
all the weights into a unit of the next layer share one sign (Glorot & Bengio 2010 and LeCun
et al. 1998, "Efficient BackProp", recommend zero-centred units for this reason); tanh is
zero-centred and trains faster; ReLU does not saturate for positive inputs and trains faster
still.
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
            "ratios": ratios,
            "sigmoid_vs_tanh": st,
            "by_lr": {a: groups[a]["by_lr"] for a in cells},
            "results_bytes": dir_size(ctx.out_dir),
        },
    )

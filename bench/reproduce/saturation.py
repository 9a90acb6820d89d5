"""Claim 8 (the seed's slides): saturating and non-zero-centred activations train slower.

Sigmoid vs tanh vs ReLU hidden layers in the same MLP on MNIST-1D, each at its own learning
rate, tuned on tuning seeds by a bracketing search and measured on 8 fresh seeds
(``bench.protocol``), with ``diagnostics = true``:

- saturation: ``saturation_fraction``, the share of (example, unit) pairs with
  ``|phi'(h)| < 1%`` of its maximum (relu's zero side counts: its derivative is 0 there);
- zero-centring: ``same_sign_fraction``, the share of (example, unit) pairs whose incoming
  weight gradients all have one sign. The per-example gradient of unit j is ``a * delta_j``,
  so this is 1 whenever the layer's input ``a`` is all of one sign: after sigmoid (outputs in
  (0, 1)) and after relu (outputs >= 0; the zero inputs give zero gradient entries) alike.
  Layer 1 sees the data, which are centred, so only layers 2.. carry the activation's effect;
- speed: Kaplan-Meier median steps to the target over the measurement seeds with a bootstrap
  CI, and the paired ratios of the medians (``bench.stats.median_ratio``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.reproduce._common import (
    SLIM_KEEP,
    Context,
    boot_ci,
    clean,
    combine,
    dir_size,
    fmt_km,
    fmt_ratio,
    km,
    md_table,
    measured_curves,
    pick,
    protocol_block,
    protocol_md,
    ratio,
    save_figure,
    select,
    side,
    slim_stages,
    status,
    tuned_sweep,
    write_report,
)
from bench.reproduce._common import fmt_num as _f

TITLE = "Saturation and zero-centring: sigmoid vs tanh vs ReLU"

ACTS = ("sigmoid", "tanh", "relu")
DIAG_KEEP = ("saturation_fraction", "same_sign_fraction", "act_mean", "sparsity")


def spec(size: str, data_dir: str | None = None) -> dict[str, Any]:
    """The sweep: sigmoid, tanh and relu MLPs with diagnostics, lr tuned per activation."""
    steps = pick(size, tiny=20, default=2500, full=10000)
    every = pick(size, tiny=10, default=50, full=100)
    return {
        "experiment": "saturation",
        "dataset": "mnist1d",
        "activation": list(ACTS),
        "depth": 4,
        "width": pick(size, tiny=16, default=128, full=256),
        "init": "lecun_normal",
        "optimizer": "sgd",
        "batch_size": pick(size, tiny=16, default=64, full=128),
        "steps": steps,
        "lr": pick(
            size,
            tiny=[0.1],
            default=[0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
            full=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
        ),
        "protocol": "tuned",
        "tuning_seeds": pick(
            size, tiny=[1000], default=[1000, 1001, 1002], full=[1000, 1001, 1002]
        ),
        "lr_extensions": pick(size, tiny=0, default=2, full=3),
        "seed": pick(size, tiny=[0, 1], default=list(range(8)), full=list(range(10))),
        "eval_every": every,
        "eval_size": pick(size, tiny=64, default=1000, full=1000),
        "target": pick(size, tiny=0.8, default=0.4, full=0.3),
        # diagnostics need the whole run (no early_exit)
        "diagnostics": True,
        "diag_every": pick(size, tiny=10, default=250, full=500),
        "diag_size": pick(size, tiny=64, default=512, full=1000),
    }


def _layers(records: list[dict], key: str) -> np.ndarray:
    """(runs, L) of a per-layer record list (null -> NaN)."""
    rows = [[math.nan if x is None else float(x) for x in r.get(key) or []] for r in records]
    return np.array(rows, np.float64)


def _nanmed(a: np.ndarray, axis: int = 0) -> list[float | None]:
    import warnings

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.nanmedian(a, axis=axis) if a.size else np.array([])
    return [None if not math.isfinite(x) else float(x) for x in np.atleast_1d(m)]


def _nanmean(a: np.ndarray) -> float | None:
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


# --------------------------------------------------------------------------- analysis (pure)


def analyse(records: list[dict[str, Any]], p: dict[str, Any], sp: dict[str, Any]) -> dict[str, Any]:
    """Records of the tuned sweep and the protocol's summary -> per activation its tuned lr, KM
    median steps and per-layer diagnostics (medians over the measurement seeds, diverged runs
    left out of the diagnostics and counted), and the paired ratios of median steps."""
    meas = [r for r in records if r["stage"] == "measure"]
    rows = {x["activation"]: x for x in p["settings"]}
    cells: dict[str, Any] = {}
    for act in ACTS:
        if act not in rows:
            continue
        rs = select(meas, activation=act)
        ok = [r for r in rs if not r.get("diverged")]
        c: dict[str, Any] = {
            "lr": rows[act]["lr"],
            "bracket_closed": rows[act]["bracket"]["closed"],
            **km(rs),
        }
        for key in ("saturation_fraction", "same_sign_fraction", "sparsity", "act_mean"):
            for when in ("init", "final"):
                c[f"{when}_{key}"] = _nanmed(_layers(ok, f"{when}_{key}"))
        # Layers 2..L: inputs are the previous activations (layer 1 sees the data).
        c["same_sign_upper_init_mean"] = _nanmean(_layers(ok, "init_same_sign_fraction")[:, 1:])
        c["same_sign_upper_final_mean"] = _nanmean(_layers(ok, "final_same_sign_fraction")[:, 1:])
        sat = _layers(ok, "final_saturation_fraction")
        per_seed = [float(np.nanmean(x)) for x in sat if np.isfinite(x).any()]
        c["saturation_final_mean"] = float(np.mean(per_seed)) if per_seed else None
        c["saturation_final_ci"] = boot_ci(per_seed, "mean") if per_seed else None
        cells[act] = c

    def r(a: str, b: str) -> dict[str, Any] | None:
        na, nb = select(meas, activation=a), select(meas, activation=b)
        return ratio(na, nb) if na and nb else None

    return {
        "target": sp["target"],
        "steps": sp["steps"],
        "cells": cells,
        "ratios": {
            "sigmoid/tanh": r("sigmoid", "tanh"),
            "tanh/relu": r("tanh", "relu"),
            "sigmoid/relu": r("sigmoid", "relu"),
        },
        "protocol": protocol_block(p),
    }


def _part(r: dict[str, Any] | None) -> int:
    return side(r["ci"], 1.0, r["ci_bound"]) if r and r["ratio"] is not None else 0


def verdict(s: dict[str, Any]) -> tuple[str, str]:
    """Two parts, each a paired ratio of KM median steps against 1: sigmoid slower than tanh
    (the zero-centring and saturation argument), and relu faster than tanh. Held when both CIs
    lie above 1, not held when either lies below 1, inconclusive otherwise."""
    st_, tr = s["ratios"]["sigmoid/tanh"], s["ratios"]["tanh/relu"]
    a, b = _part(st_), _part(tr)
    st = combine([status(a, 1), status(b, 1)])
    words = {1: "CI above 1", -1: "CI below 1", 0: "CI includes 1 or undetermined"}
    text = (
        f"Sigmoid vs tanh: sigmoid/tanh = {fmt_ratio(st_)} ({words[a]}: "
        + {1: "sigmoid slower", -1: "sigmoid faster", 0: "no measured difference"}[a]
        + f"). ReLU vs tanh: tanh/relu = {fmt_ratio(tr)} ({words[b]}: "
        + {1: "relu faster", -1: "relu slower", 0: "no measured difference"}[b]
        + ")."
    )
    return st, text


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
    ax.set(
        xlabel="step",
        ylabel="training error (eval subset)",
        title="at each tuned lr, measurement seeds",
    )
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
    fig.suptitle(
        "Median over the measurement seeds at each activation's tuned lr (line style = layer)"
    )
    return [save_figure(ctx, fig, "saturation.png")]


# --------------------------------------------------------------------------- report


def report(ctx: Context, sp: dict[str, Any], s: dict[str, Any], figs: list[str]) -> dict[str, Any]:
    """REPORT.md and summary.json from the summary (every number in the text comes from it)."""
    budget, cells = s["steps"], s["cells"]

    def layers(v: list[float | None]) -> str:
        return ", ".join(_f(x, 2) for x in v)

    rows = [
        [
            act,
            f"{c['lr']:g}" + ("" if c["bracket_closed"] else " (open)"),
            f"{c['reached']}/{c['n']} ({c['failed']} failed)",
            fmt_km(c, budget),
            layers(c["init_saturation_fraction"]),
            layers(c["final_saturation_fraction"]),
            layers(c["init_same_sign_fraction"]),
            layers(c["final_same_sign_fraction"]),
            layers(c["final_sparsity"]),
        ]
        for act, c in cells.items()
    ]
    table = md_table(
        [
            "activation",
            "tuned lr",
            "reached",
            "KM median steps to target [95% CI]",
            "saturation at init (L1..L4)",
            "saturation at end",
            "same-sign at init",
            "same-sign at end",
            "exact zeros at end",
        ],
        rows,
    )
    ratio_table = md_table(
        ["ratio of KM median steps", "value [95% CI]", "bound"],
        [[k, fmt_ratio(r), r["bound"]] for k, r in s["ratios"].items() if r],
    )
    results_md = (
        "Published: no numbers for this MLP; the seed's slides state the direction (sigmoid "
        "saturates and is not zero-centred, so its next layer's weight gradients all share "
        "one sign per example and SGD zig-zags; tanh is centred; relu does not saturate on "
        "its positive side). Per-layer entries are medians over the measurement seeds at the "
        "tuned lr.\n\n"
        + table
        + "\n\nSteps-to-target ratios (paired seed bootstrap 95% CI; 'lower' = at least the "
        "value because the numerator's median is not reached):\n\n" + ratio_table
    )
    st, head = verdict(s)
    ssi = {a: _f(c["same_sign_upper_init_mean"]) for a, c in cells.items()}
    ss = {a: _f(c["same_sign_upper_final_mean"]) for a, c in cells.items()}
    sat = ", ".join(
        f"{a} {_f(c['saturation_final_mean'], 2)} "
        f"[{_f((c['saturation_final_ci'] or [None])[0], 2)}, "
        f"{_f((c['saturation_final_ci'] or [None, None])[1], 2)}]"
        for a, c in cells.items()
    )
    ones = [a for a, c in cells.items() if (c["same_sign_upper_final_mean"] or 0) >= 0.99]
    verdict_md = f"""
**{st.capitalize()}.** {head}

Zero-centring: the same-sign fraction of layers 2-4 (inputs = previous activations) was
{", ".join(f"{a} {ssi[a]} at init / {ss[a]} at the end" for a in cells)}; it is 1 for
{", ".join(ones) or "none"}: with inputs of one sign (sigmoid outputs in (0, 1), relu outputs
>= 0) every example pushes all of a unit's incoming weights the same way, so relu is no more
zero-centred than sigmoid in this sense. Saturation at the end of training (mean over layers
and measurement seeds, 95% CI): {sat}; relu's count is its zero side (derivative 0), not a
squashing tail.
"""
    setup = f"""
Sweep: MLP 40 -> {sp["width"]} x {sp["depth"]} -> 10 on MNIST-1D, {", ".join(ACTS)}, init
{sp["init"]}, zero biases, SGD, batch {sp["batch_size"]}, {sp["steps"]} steps. Target:
{sp["target"]:g} training error on the first {sp["eval_size"]} training examples, measured every
{sp["eval_every"]} steps. `diagnostics = true` every {sp["diag_every"]} steps on the first
{sp["diag_size"]} training examples: saturation_fraction (|phi'(h)| < 1% of max phi'),
same_sign_fraction (per example and unit, all incoming weight gradients of one sign, among those
not all zero), sparsity (exact zeros of phi(h)); diverged runs are left out of the diagnostics
(and counted as failures in the steps).

{protocol_md(s["protocol"])}

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
    data = {**s, "status": st, "results_bytes": dir_size(ctx.out_dir)}
    return write_report(
        ctx,
        title=TITLE,
        claim=claim,
        setup=setup,
        results_md=results_md,
        verdict=verdict_md,
        figures=figs,
        config=sp,
        data=clean(data),
    )


def run(ctx: Context) -> dict[str, Any]:
    sp = spec(ctx.size, ctx.data_dir)
    t = tuned_sweep(ctx, sp)
    s = analyse(t.records, t.protocol, sp)
    s["run_dir"] = str(t.root)
    curves: dict[str, list[dict[str, np.ndarray]]] = {}
    for r, c in measured_curves(t):
        if not r.get("diverged"):
            curves.setdefault(r["activation"], []).append(c)
    best = {a: c["lr"] for a, c in s["cells"].items()}
    figs = _plot(ctx, sp, s, curves, best)
    slim_stages(t, keep=(*SLIM_KEEP, "diag_steps", *(f"diag_{m}" for m in DIAG_KEEP)))
    return report(ctx, sp, s, figs)

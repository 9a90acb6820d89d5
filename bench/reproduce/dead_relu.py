"""Claim 7 (the seed's slides): large learning rates kill ReLUs; a small positive bias init
(0.01) reduces dead units; the init scheme matters.

One sweep of ReLU MLPs on MNIST-1D with ``diagnostics = true``: learning rate from small to
large x bias init (0, 0.01) x init scheme (he_normal, lecun_normal, xavier_uniform) x seeds.
A unit is dead when its derivative is 0 on every one of the diagnostic examples (the first
``diag_size`` training examples), ``bench.diagnostics``' ``dead_fraction`` per hidden layer; the
statistic of a run is the fraction over all hidden units at the end of training
(``final_dead_fraction`` averaged over the equal-width layers).

The learning rate is the factor under study, so the grid is the design (no lr tuning). The
statistical unit is the seed: runs that differ only in bias init (or only in the init scheme,
whose weights are the same standard draw scaled differently, or only in the lr) share the seed,
hence the initial draw and the minibatches. A comparison takes, per seed, the mean of the
paired differences over the other factors' cells, and its 95% CI is a bootstrap over the
seeds (8 at the default size), not over the (init, lr, seed) cells, which are not
independent.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.reproduce._common import (
    Context,
    boot_ci,
    clean,
    combine,
    dir_size,
    grid_block,
    md_table,
    pick,
    protocol_md,
    save_figure,
    side,
    slim_curves,
    status,
    sweep,
    write_report,
)
from bench.reproduce._common import fmt_interval as _ci
from bench.reproduce._common import fmt_num as _f

TITLE = "Dead ReLUs vs learning rate, bias init and init scheme"

INITS = ("he_normal", "lecun_normal", "xavier_uniform")
BIASES = (0.0, 0.01)


def spec(size: str, data_dir: str | None = None) -> dict[str, Any]:
    """The sweep: lr x bias init x init scheme x seed, ReLU MLPs with diagnostics."""
    steps = pick(size, tiny=20, default=1500, full=5000)
    every = pick(size, tiny=10, default=150, full=250)
    return {
        "experiment": "dead-relu",
        "dataset": "mnist1d",
        "activation": "relu",
        "depth": 4,
        "width": pick(size, tiny=16, default=128, full=256),
        "init": pick(size, tiny=["he_normal"], default=list(INITS), full=list(INITS)),
        "optimizer": "sgd",
        "batch_size": pick(size, tiny=16, default=64, full=128),
        "steps": steps,
        "lr": pick(
            size,
            tiny=[0.01, 1.0],
            default=[0.01, 0.03, 0.1, 0.3, 0.6, 1.0],
            full=[0.003, 0.01, 0.03, 0.1, 0.3, 0.6, 1.0, 2.0],
        ),
        "bias_init": list(BIASES),
        "seed": list(range(pick(size, tiny=2, default=8, full=8))),
        "eval_every": every,
        "eval_size": pick(size, tiny=64, default=1000, full=1000),
        "target": 0.5,
        "diagnostics": True,
        "diag_every": every,
        "diag_size": pick(size, tiny=64, default=512, full=1000),
    }


def _net_dead(r: dict[str, Any], key: str = "final_dead_fraction") -> float:
    """Fraction of all hidden units dead (layers have equal width); NaN if unmeasured."""
    v = r.get(key)
    if v is None or r.get("diverged"):
        return math.nan
    a = np.array([math.nan if x is None else float(x) for x in v])
    return float(np.mean(a))


def _paired(records: list[dict], vary: str, a: Any, b: Any, fixed: dict[str, Any]) -> dict:
    """dead(b) - dead(a) for runs differing only in ``vary``: per seed the mean over the other
    factors' cells (pairs with a diverged run left out, and counted), then the mean over seeds
    with a bootstrap 95% CI over the seeds."""

    def key(r: dict) -> tuple:
        return tuple(r[k] for k in ("init", "bias_init", "lr", "seed") if k != vary)

    sel = [r for r in records if all(r[k] == v for k, v in fixed.items())]
    ra = {key(r): r for r in sel if r[vary] == a}
    rb = {key(r): r for r in sel if r[vary] == b}
    per_seed: dict[Any, list[float]] = {}
    n_pairs = n_dropped = 0
    for k in ra:
        if k not in rb:
            continue
        d = _net_dead(rb[k]) - _net_dead(ra[k])
        if math.isfinite(d):
            per_seed.setdefault(ra[k]["seed"], []).append(d)
            n_pairs += 1
        else:
            n_dropped += 1
    seeds = sorted(per_seed)
    v = [float(np.mean(per_seed[x])) for x in seeds]
    if not v:
        return {"n_seeds": 0, "n_pairs": 0, "n_dropped": n_dropped, "mean": None, "ci95": None}
    return {
        "n_seeds": len(v),
        "n_pairs": n_pairs,
        "n_dropped": n_dropped,
        "per_seed": v,
        "mean": float(np.mean(v)),
        "ci95": boot_ci(v, "mean"),
        "fraction_b_higher": float(np.mean(np.array(v) > 0)),
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


# --------------------------------------------------------------------------- analysis (pure)


def analyse(records: list[dict[str, Any]], sp: dict[str, Any]) -> dict[str, Any]:
    """The sweep's records -> per cell the dead fraction over seeds, and the paired comparisons
    (seed as the unit): each larger lr against the smallest, the pre-specified lr test, bias init
    0.01 - 0 and each init scheme against the first."""
    inits = list(sp["init"])
    lrs = sp["lr"]
    by_lr = []
    for lr in lrs:
        d = np.array([_net_dead(r) for r in records if r["lr"] == lr])
        fin = d[np.isfinite(d)]
        by_lr.append(
            {
                "lr": lr,
                "mean": float(fin.mean()) if fin.size else None,
                "max": float(fin.max()) if fin.size else None,
                "finite": int(fin.size),
                "runs": int(d.size),
            }
        )
    # The lr test, fixed before looking at dead fractions: the largest lr at which at least
    # half the runs stay finite, against the smallest lr.
    usable = [b["lr"] for b in by_lr if b["runs"] and 2 * b["finite"] >= b["runs"]]
    large = max(usable) if usable else lrs[-1]
    lr_test = {"small": lrs[0], "large": large, **_paired(records, "lr", lrs[0], large, {})}
    diverged = [r for r in records if r["diverged"]]
    q0 = np.array([x for r in records for x in (r.get("init_q") or []) if x is not None])
    return {
        "cells": _cells(sp, records),
        "by_lr": by_lr,
        "lr_test": lr_test,
        "lr_pairs": {
            f"{lrs[j]:g} vs {lrs[0]:g}": _paired(records, "lr", lrs[0], lrs[j], {})
            for j in range(1, len(lrs))
        },
        "bias_pairs": {
            **{
                init: _paired(records, "bias_init", BIASES[0], BIASES[1], {"init": init})
                for init in inits
            },
            "all": _paired(records, "bias_init", BIASES[0], BIASES[1], {}),
        },
        "init_pairs": {
            f"{other} - {inits[0]}": _paired(records, "init", inits[0], other, {})
            for other in inits[1:]
        },
        "n_diverged": len(diverged),
        "diverged_lrs": sorted({r["lr"] for r in diverged}),
        "last_divergence_step": max((r["divergence_step"] for r in diverged), default=None),
        "pre_activation_rms_at_init": float(np.sqrt(q0.mean())) if q0.size else None,
        "protocol": grid_block(
            sp["seed"],
            "percentile bootstrap over seeds of the per-seed mean paired difference",
            grid={"lr": lrs, "bias_init": sp["bias_init"], "init": inits},
            n_diverged=len(diverged),
        ),
    }


def _sign(v: dict[str, Any]) -> int:
    return side(v.get("ci95"), 0.0) if v.get("n_seeds") else 0


def verdict(s: dict[str, Any]) -> tuple[str, str]:
    """Two directional parts, each a paired difference of dead fractions over seeds against 0:
    the large lr kills more units (CI above 0) and bias init 0.01 leaves fewer dead (CI below
    0). Held when both hold, not held when either CI lies on the wrong side, inconclusive
    otherwise. The init scheme (no direction claimed) is described in words."""
    lt, b = s["lr_test"], s["bias_pairs"]["all"]
    a_sign, b_sign = _sign(lt), _sign(b)
    st = combine([status(a_sign, 1), status(b_sign, -1)])
    parts = [
        f"Largest lr with mostly finite runs ({lt['large']:g}) against the smallest "
        f"({lt['small']:g}): {_f(lt['mean'])} more dead units (95% CI {_ci(lt['ci95'])}, "
        f"{lt['n_seeds']} seeds) -> "
        + {
            1: "large learning rates killed ReLUs here",
            0: "no measured increase",
            -1: "fewer dead units at the large lr",
        }[a_sign]
        + ".",
        f"Bias init 0.01 vs 0: {_f(b['mean'])} (95% CI {_ci(b['ci95'])}, {b['n_seeds']} seeds) -> "
        + {
            -1: "the small positive bias reduced dead units",
            0: "no measured reduction (a "
            f"bias of 0.01 is small next to the pre-activations' RMS at init, "
            f"{_f(s['pre_activation_rms_at_init'], 2)})",
            1: "more dead units with bias 0.01",
        }[b_sign]
        + ".",
    ]
    for k, v in s["init_pairs"].items():
        parts.append(
            f"Init {k}: {_f(v['mean'])} (CI {_ci(v['ci95'])}) -> "
            + {
                1: "more dead units than the first scheme",
                -1: "fewer",
                0: "no measured difference",
            }[_sign(v)]
            + "."
        )
    if s["n_diverged"]:
        parts.append(
            f"{s['n_diverged']} runs diverged (at lr "
            f"{', '.join(f'{x:g}' for x in s['diverged_lrs'])}, by step "
            f"{s['last_divergence_step']}); their dead fraction is unmeasured, so the kill "
            "regime is seen only in the runs that survived it."
        )
    return st, " ".join(parts)


# --------------------------------------------------------------------------- report


def report(ctx: Context, sp: dict[str, Any], s: dict[str, Any], figs: list[str]) -> dict[str, Any]:
    """REPORT.md and summary.json from the summary (every number in the text comes from it)."""
    rows = [
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
        for c in s["cells"]
    ]
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
            ["comparison", "seeds (pairs)", "mean difference [95% CI over seeds]", "seeds higher"],
            [
                [
                    k,
                    f"{v['n_seeds']} ({v['n_pairs']})",
                    f"{_f(v['mean'])} {_ci(v['ci95'])}",
                    _f(v.get("fraction_b_higher"), 2),
                ]
                for k, v in d.items()
            ],
        )

    trend = ", ".join(
        f"lr {b['lr']:g}: {_f(b['mean'], 2)} (max {_f(b['max'], 2)}, {b['finite']}/{b['runs']} "
        "finite)"
        for b in s["by_lr"]
    )
    results_md = (
        "Published: no numbers; the seed's slides state the direction of each effect "
        "(large lr -> more dead units; bias init 0.01 -> fewer; He vs LeCun/Xavier).\n\n"
        "Dead fraction of all hidden units at the end of training, per cell (mean over seeds, "
        "bootstrap 95% CI over seeds; diverged runs left out and counted):\n\n" + table + "\n\n"
        f"Dead fraction at the end, mean over all finite runs, by lr: {trend}.\n\n"
        "Paired differences dead(second) - dead(first): per seed the mean over the other "
        "factors' cells, then the mean over seeds with a bootstrap 95% CI over seeds; 'seeds "
        "higher' = share of seeds where the second has more dead units.\n\n"
        "Learning rate (each larger lr against the smallest, all inits and biases):\n\n"
        + pair_rows(s["lr_pairs"])
        + "\n\nBias init 0.01 - 0 (per init scheme, then all):\n\n"
        + pair_rows({f"{k}: 0.01 - 0": v for k, v in s["bias_pairs"].items()})
        + "\n\nInit scheme (all lrs and biases):\n\n"
        + pair_rows(s["init_pairs"])
    )
    setup = f"""
Sweep (`bench.reproduce._common.sweep`): ReLU MLP 40 -> {sp["width"]} x {sp["depth"]} -> 10 on
MNIST-1D, SGD, batch {sp["batch_size"]}, {sp["steps"]} steps; lr {sp["lr"]}; bias init
{sp["bias_init"]}; init {sp["init"]}; seeds {sp["seed"]}. `diagnostics = true`, every
{sp["diag_every"]} steps on the first {sp["diag_size"]} training examples: dead_fraction per
hidden layer = units whose relu derivative is 0 on every one of those examples (jax.nn's
relu'(0) = 0). A run's statistic: the mean of `final_dead_fraction` over the {sp["depth"]}
layers. Diverged runs (loss > 1e4 or not finite) are counted and left out of the statistics.

{protocol_md(s["protocol"])} The learning rate is the factor under study here, so it is not
tuned.

Command: `{ctx.command}`.
"""
    claim = """
The seed's slides (no source numbers): "large learning rates kill ReLUs" (a unit whose
pre-activation is negative on every input has zero gradient and never recovers), "a small
positive bias init (0.01) reduces dead units", and the init scheme (He-normal, Var W = 2/fan_in,
He et al. 2015, vs LeCun-normal Var W = 1/fan_in / Xavier Var W = 2/(fan_in + fan_out)) changes
how many die.
"""
    st, text = verdict(s)
    return write_report(
        ctx,
        title=TITLE,
        claim=claim,
        setup=setup,
        results_md=results_md,
        verdict=f"**{st.capitalize()}.** {text}",
        figures=figs,
        config=sp,
        data=clean({**s, "status": st, "results_bytes": dir_size(ctx.out_dir)}),
    )


def run(ctx: Context) -> dict[str, Any]:
    sp = spec(ctx.size, ctx.data_dir)
    run_dir, records = sweep(ctx, sp)
    slim_curves(
        run_dir,
        keep=("config_ids", "eval_steps", "eval_error", "diag_steps", "diag_dead_fraction"),
    )
    s = analyse(records, sp)
    s["run_dir"] = str(run_dir)
    figs = _plot(ctx, sp, s["cells"], _load_dead_curves(run_dir, records))
    return report(ctx, sp, s, figs)

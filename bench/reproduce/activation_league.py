"""Claim 3: a league table of every registered activation on one task, ranked by Kaplan-Meier
median steps to a training-error target (each activation at its own tuned lr, measured on 8
fresh seeds, ``bench.protocol``) and by final training error at that lr, with seed-bootstrap
CIs; compared with the ranking of Ramachandran, Zoph & Le (2017).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import activations
from bench import summary
from bench.reproduce._common import (
    Context,
    boot_ci,
    clean,
    dir_size,
    fmt_ci,
    fmt_km,
    fmt_ratio,
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
    status,
    theory_chi1,
    tuned_sweep,
    write_report,
)

TITLE = "Activation league: every registered activation on one task"

CLAIM = """
Ramachandran, Zoph & Le (2017), "Searching for activation functions": Swish
(x sigmoid(beta x); SiLU at beta = 1) matches or beats the baselines LReLU (0.01), PReLU
(init 0.25), softplus, ELU (1.0), SELU and GELU on CIFAR-10/100 (ResNet-164, WRN 28-10,
DenseNet 100-12, median of 5 runs) and on ImageNet (+0.9% top-1 on Mobile NASNet-A, +0.6% on
Inception-ResNet-v2 over ReLU). The claim tested here is the qualitative one: on a common
task, do the smooth ReLU-like activations (swish/silu, gelu, mish, elu, selu) rank at or above
relu, and the saturating ones (sigmoid, tanh family) below? Their numbers are test accuracies
of large convolutional nets after full training; nothing here is comparable in value, only in
order.
"""


SMOOTH = ("silu", "gelu", "mish", "elu", "selu")
SATURATING = ("sigmoid", "tanh", "hard_tanh", "soft_sign")
CHANCE_ERROR = 0.9  # a failed run's final error: chance on 10 classes


def spec(size: str, data_dir: str | None = None) -> dict[str, Any]:
    """The sweep: every registered activation in one MLP, lr tuned per activation."""
    names = list(activations.names())
    return {
        "experiment": "activation_league",
        "description": "all activations, MNIST-1D MLP, SGD, steps to target and final error",
        "dataset": pick(size, tiny="mnist1d", default="mnist1d", full="fashion-mnist"),
        "model": "mlp",
        "activation": pick(size, tiny=["relu", "silu"], default=names, full=names),
        "depth": pick(size, tiny=2, default=4, full=8),
        "width": pick(size, tiny=16, default=64, full=256),
        "init": "lecun_normal",
        "optimizer": "sgd",
        "batch_size": pick(size, tiny=32, default=128, full=128),
        "steps": pick(size, tiny=20, default=500, full=5000),
        "eval_every": pick(size, tiny=10, default=25, full=100),
        "eval_size": pick(size, tiny=100, default=500, full=5000),
        "target": pick(size, tiny=0.85, default=0.4, full=0.15),
        "lr": pick(
            size,
            tiny=[0.1],
            default=[2.0, 1.0, 0.5, 0.25],
            full=[2.0, 1.0, 0.5, 0.2, 0.1, 0.05],
        ),
        "protocol": "tuned",
        # 4 lrs x 2 tuning seeds = 8 lanes, as many as the measurement seeds: the two stages
        # share one compiled program per activation (20 activations on 2 CPU cores)
        "tuning_seeds": pick(size, tiny=[1000], default=[1000, 1001], full=[1000, 1001, 1002]),
        "lr_extensions": pick(size, tiny=0, default=2, full=4),
        "seed": pick(size, tiny=[0, 1], default=list(range(8)), full=list(range(8))),
        # no early_exit: the final training error at the budget is the second ranking
        "strategy": "auto",
    }


# --------------------------------------------------------------------------- analysis (pure)


def analyse(records: list[dict[str, Any]], p: dict[str, Any], sp: dict[str, Any]) -> dict[str, Any]:
    """Records of the tuned sweep and the protocol's summary -> two rankings on the measurement
    seeds: KM median steps to target (with x/relu paired ratios), and mean final training error
    (failed runs at chance) at the same tuned lr."""
    meas = [r for r in records if r["stage"] == "measure"]
    relu = select(meas, activation="relu")
    rows = []
    for row in p["settings"]:
        a = row["activation"]
        rs = select(meas, activation=a)
        err = [
            CHANCE_ERROR
            if r.get("diverged") or r.get("final_train_error") is None
            else float(r["final_train_error"])
            for r in rs
        ]
        try:
            chi = theory_chi1(a, 1.0, 0.0)
        except Exception:  # no mean-field theory for this activation
            chi = math.nan
        rows.append(
            {
                "activation": a,
                "lr": row["lr"],
                "bracket_closed": row["bracket"]["closed"],
                **km(rs),
                "vs_relu": ratio(rs, relu) if a != "relu" and relu else None,
                "final_error_mean": float(np.mean(err)) if err else None,
                "final_error_ci": boot_ci(err, "mean") if err else None,
                "chi1": chi,
            }
        )
    by_steps = sorted(
        rows,
        key=lambda r: (
            r["median"] is None,
            r["median"] or 0.0,
            r["final_error_mean"],
            r["activation"],
        ),
    )
    by_err = sorted(rows, key=lambda r: (r["final_error_mean"], r["activation"]))
    rank_steps = {r["activation"]: i + 1 for i, r in enumerate(by_steps)}
    rank_err = {r["activation"]: i + 1 for i, r in enumerate(by_err)}
    for r in rows:
        r["rank_steps"], r["rank_error"] = rank_steps[r["activation"]], rank_err[r["activation"]]
    rho = None
    if len(rows) > 2:
        from scipy.stats import spearmanr

        acts = list(rank_steps)
        rho = float(spearmanr([rank_steps[a] for a in acts], [rank_err[a] for a in acts])[0])
    return {
        "target": sp["target"],
        "steps": sp["steps"],
        "ranking": by_steps,
        "spearman_steps_vs_error": rho,
        "identity_included": "identity" in rank_steps,
        "protocol": protocol_block(p),
    }


def verdict(s: dict[str, Any]) -> tuple[str, str]:
    """The claim's core, Swish (silu) at least as fast as relu: held when the 95% CI of
    silu/relu steps lies below 1, not held when above 1, inconclusive when it includes 1 (no
    equivalence margin is claimed, so "matches" cannot be told from "slower by a little").
    The other smooth and the saturating activations are described in words."""
    by = {r["activation"]: r for r in s["ranking"]}
    silu = by.get("silu")
    if silu is None or silu["vs_relu"] is None or silu["vs_relu"]["ratio"] is None:
        return status(0, -1), "silu/relu could not be measured (missing or both censored)."
    r = silu["vs_relu"]
    st = status(side(r["ci"], 1.0, r["ci_bound"]), -1)
    head = {
        -1: "silu reached the target faster than relu (CI below 1)",
        1: "silu was slower than relu (CI above 1)",
        0: "the CI includes 1: no measured difference",
    }[side(r["ci"], 1.0, r["ci_bound"])]

    def group(names: tuple[str, ...]) -> str:
        out = []
        for a in names:
            x = by.get(a)
            if x is None or x["vs_relu"] is None:
                continue
            sg = side(x["vs_relu"]["ci"], 1.0, x["vs_relu"]["ci_bound"])
            word = {1: "slower", -1: "faster", 0: "no measured difference"}[sg]
            out.append(f"{a} {fmt_ratio(x['vs_relu'])} ({word})")
        return "; ".join(out) or "none measured"

    text = (
        f"silu/relu steps to target = {fmt_ratio(r)}: {head}. silu ranks {silu['rank_steps']}/"
        f"{len(by)} by steps and {silu['rank_error']}/{len(by)} by final error"
        + (
            f"; relu {by['relu']['rank_steps']} and {by['relu']['rank_error']}"
            if "relu" in by
            else ""
        )
        + f". Other smooth ReLU-like activations, x/relu: {group(SMOOTH[1:])}. Saturating "
        f"ones, x/relu: {group(SATURATING)}."
    )
    return st, text


def _plot(ctx: Context, s: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    budget, rows = s["steps"], s["ranking"]
    rows_err = sorted(rows, key=lambda r: r["rank_error"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.32 * len(rows) + 1.8))
    ax = axes[0]
    for i, r in enumerate(rows):
        m = r["median"]
        lo, hi = (math.nan if v is None else v for v in (r["ci"] or (None, None)))
        x = m if m is not None else budget
        hi_d = min(hi, budget * 1.1) if math.isfinite(hi) else budget * 1.1
        lo_d = lo if math.isfinite(lo) else x
        ax.errorbar(
            x,
            i,
            xerr=[[x - min(lo_d, x)], [max(hi_d - x, 0)]],
            fmt="o" if m is not None else "x",
            color="tab:blue" if m is not None else "tab:red",
            capsize=3,
        )
    ax.axvline(budget, color="k", ls=":", lw=1, label=f"budget {budget} (x: median not reached)")
    ax.set_yticks(range(len(rows)), [r["activation"] for r in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("KM median steps to target at the tuned lr (95% CI)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    ax = axes[1]
    for i, r in enumerate(rows_err):
        lo, hi = r["final_error_ci"]
        m = r["final_error_mean"]
        ax.errorbar(m, i, xerr=[[m - lo], [hi - m]], fmt="o", capsize=3)
    ax.set_yticks(range(len(rows_err)), [r["activation"] for r in rows_err])
    ax.invert_yaxis()
    ax.set_xlabel(f"final training error at step {budget}, tuned lr (mean over seeds, 95% CI)")
    ax.grid(alpha=0.3)
    fig.suptitle("League on the measurement seeds (fastest / lowest first)")
    fig.tight_layout()
    return save_figure(ctx, fig, "league.png")


# --------------------------------------------------------------------------- report


def report(ctx: Context, sp: dict[str, Any], s: dict[str, Any], figs: list[str]) -> dict[str, Any]:
    """REPORT.md and summary.json from the summary (every number in the text comes from it)."""
    budget, target, rows = s["steps"], s["target"], s["ranking"]
    table = md_table(
        [
            "rank (steps)",
            "activation",
            "tuned lr",
            "KM median steps to target [95% CI]",
            "reached",
            "x / relu steps [95% CI]",
            "rank (final error)",
            "final error (mean [95% CI])",
            "chi_1 at LeCun init",
        ],
        [
            [
                r["rank_steps"],
                r["activation"],
                f"{r['lr']:g}" + ("" if r["bracket_closed"] else " (open)"),
                fmt_km(r, budget),
                f"{r['reached']}/{r['n']} ({r['failed']} failed)",
                "1 (reference)" if r["activation"] == "relu" else fmt_ratio(r["vs_relu"]),
                r["rank_error"],
                f"{r['final_error_mean']:.3f} {fmt_ci(r['final_error_ci'], digits=3)}",
                f"{r['chi1']:.3g}",
            ]
            for r in rows
        ],
    )
    chis = [r["chi1"] for r in rows if math.isfinite(r["chi1"])]
    identity = (
        ", **identity included as a baseline**: the same network with no nonlinearity is a "
        "linear classifier"
        if s["identity_included"]
        else ""
    )
    setup = f"""
Data: {sp["dataset"]}. Model: MLP, {sp["depth"]} hidden layers of width {sp["width"]},
LeCun normal init (Var W = 1/fan_in, zero biases: the init SELU was designed for, neutral for
the others), plain SGD, batch {sp["batch_size"]}, {budget} steps. Activations: all
{len(sp["activation"])} registered in `activations.names()` with their default hyperparameters
(leaky_relu 0.01, prelu init 0.25 per layer, elu/celu alpha 1, silu beta 1, gelu tanh
approximation as jax.nn){identity}.
Steps to target: first evaluation (every {sp["eval_every"]} steps, on the first
{sp["eval_size"]} training examples) at or below {target:g} training error. Final error:
training error at step {budget} at the same tuned lr (failed runs count as chance, 0.9), mean
over the measurement seeds with a bootstrap CI. chi_1 at (sigma_w = 1, sigma_b = 0) from
activations.theory.

{protocol_md(s["protocol"])}
"""
    st, head = verdict(s)
    rho = s["spearman_steps_vs_error"]
    verdict_md = f"""
**{st.capitalize()}.** {head}

Compared with Ramachandran et al.: their Swish > baselines ordering is a test-accuracy result
for large CNNs after full training; here it is training speed of a small MLP, so only the order
is comparable. Spearman correlation between the two rankings:
{"n/a" if rho is None else f"{rho:.2f}"}. Neighbouring ranks whose CIs overlap are not
distinguishable; only gaps whose ratio CI excludes 1 are measured facts. Activations whose
median is not reached are ordered by final error. Conditions: one task, one width/depth, plain
SGD, LeCun init; at sigma_w = 1 chi_1 ranges from {min(chis, default=math.nan):.2g} to
{max(chis, default=math.nan):.2g} across activations, so some start near the edge of chaos and
others deep in the ordered phase.
"""
    data = {**s, "status": st, "results_bytes": dir_size(ctx.out_dir)}
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
    )


def run(ctx: Context) -> dict[str, Any]:
    sp = spec(ctx.size, ctx.data_dir)
    t = tuned_sweep(ctx, sp)
    slim_stages(t)
    s = analyse(t.records, t.protocol, sp)
    s["run_dir"] = str(t.root)
    return report(ctx, sp, s, [_plot(ctx, s)])

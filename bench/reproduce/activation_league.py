"""Claim 3: a league table of every registered activation on one task, ranked by median steps
to a training-error target and by final training error, with seed-bootstrap CIs; compared
with the ranking of Ramachandran, Zoph & Le (2017).
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
    fmt_ratio,
    fmt_steps,
    md_table,
    save_figure,
    slim_curves,
    steps_values,
    sweep,
    theory_chi1,
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


def _spec(ctx: Context) -> dict[str, Any]:
    names = list(activations.names())
    return {
        "experiment": "activation_league",
        "description": "all activations, MNIST-1D MLP, SGD, steps to target and final error",
        "dataset": ctx.pick(tiny="mnist1d", default="mnist1d", full="fashion-mnist"),
        "model": "mlp",
        "activation": ctx.pick(tiny=["relu", "tanh"], default=names, full=names),
        "depth": ctx.pick(tiny=2, default=4, full=8),
        "width": ctx.pick(tiny=16, default=64, full=256),
        "init": "lecun_normal",
        "optimizer": "sgd",
        "batch_size": ctx.pick(tiny=32, default=128, full=128),
        "steps": ctx.pick(tiny=20, default=500, full=5000),
        "eval_every": ctx.pick(tiny=10, default=25, full=100),
        "eval_size": ctx.pick(tiny=100, default=500, full=5000),
        "target": ctx.pick(tiny=0.85, default=0.4, full=0.15),
        "lr": ctx.pick(
            tiny=[0.1],
            default=[4.0, 2.0, 1.0, 0.5, 0.25, 0.1],
            full=[2.0, 1.0, 0.5, 0.2, 0.1, 0.05],
        ),
        "seed": ctx.pick(tiny=[0], default=[0, 1, 2], full=[0, 1, 2, 3, 4]),
        "strategy": "auto",
    }


def _plot(ctx, rows_steps, rows_err, budget) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 0.32 * len(rows_steps) + 1.8))
    ax = axes[0]
    for i, r in enumerate(rows_steps):
        m = r["median_steps"]
        lo, hi = r["ci"] or (math.nan, math.nan)
        x = m if m is not None else budget
        hi_d = min(hi, budget * 1.1) if math.isfinite(hi) else budget * 1.1
        ax.errorbar(
            x,
            i,
            xerr=[[x - min(lo, x)], [max(hi_d - x, 0)]],
            fmt="o" if m is not None else "x",
            color="tab:blue" if m is not None else "tab:red",
            capsize=3,
        )
    ax.axvline(budget, color="k", ls=":", lw=1, label=f"budget {budget} (x: median censored)")
    ax.set_yticks(range(len(rows_steps)), [r["activation"] for r in rows_steps])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median steps to target at best lr (95% CI)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    ax = axes[1]
    for i, r in enumerate(rows_err):
        lo, hi = r["ci"]
        ax.errorbar(r["mean"], i, xerr=[[r["mean"] - lo], [hi - r["mean"]]], fmt="o", capsize=3)
    ax.set_yticks(range(len(rows_err)), [r["activation"] for r in rows_err])
    ax.invert_yaxis()
    ax.set_xlabel(f"final training error at step {budget}, best lr (mean over seeds, 95% CI)")
    ax.grid(alpha=0.3)
    fig.suptitle("League (fastest / lowest first)")
    fig.tight_layout()
    return save_figure(ctx, fig, "league.png")


def run(ctx: Context) -> dict[str, Any]:
    spec = _spec(ctx)
    run_dir, records = sweep(ctx, spec)
    slim_curves(run_dir)
    budget, target = spec["steps"], spec["target"]
    s = summary.summarize(records, reference=("tanh", "relu"))["settings"][0]

    # Ranking 1: median steps to target at each activation's best lr (summary order).
    rows_steps = []
    for label, g in s["groups"].items():
        rows_steps.append(
            {
                "activation": label,
                "best_lr": g["best_lr"],
                "best_lr_at_edge": g["best_lr_at_edge"],
                "median_steps": g["median_steps"],
                "ci": boot_ci(steps_values(g)),
                "n_reached": g["n_reached"],
                "n_seeds": g["n_seeds"],
                "vs_relu": s["vs_reference"].get(label) if label != "relu" else None,
            }
        )
    # Ranking 2: final training error, each activation at the lr with the lowest mean final
    # error (a diverged run counts as error 0.9, chance).
    rows_err = []
    for act in {r["activation"] for r in records}:
        by_lr: dict[float, list[float]] = {}
        for r in records:
            if r["activation"] == act:
                e = r["final_train_error"]
                by_lr.setdefault(r["lr"], []).append(0.9 if e is None or r["diverged"] else e)
        lr = min(by_lr, key=lambda k: (np.mean(by_lr[k]), k))
        v = by_lr[lr]
        rows_err.append(
            {"activation": act, "lr": lr, "mean": float(np.mean(v)), "ci": boot_ci(v, "mean")}
        )
    rows_err.sort(key=lambda r: (r["mean"], r["activation"]))
    rank_err = {r["activation"]: i + 1 for i, r in enumerate(rows_err)}
    rank_steps = {r["activation"]: i + 1 for i, r in enumerate(rows_steps)}
    fig = _plot(ctx, rows_steps, rows_err, budget)

    chi = {}
    for r in rows_steps:
        try:
            chi[r["activation"]] = theory_chi1(r["activation"], 1.0, 0.0)
        except Exception:
            chi[r["activation"]] = math.nan
    err_by = {r["activation"]: r for r in rows_err}
    table = md_table(
        [
            "rank (steps)",
            "activation",
            "best lr",
            "median steps to target [95% CI]",
            "reached",
            "x / relu steps [95% CI]",
            "rank (final error)",
            "final error (mean [95% CI], at lr)",
            "chi_1 at LeCun init",
        ],
        [
            [
                rank_steps[r["activation"]],
                r["activation"],
                f"{r['best_lr']:g}" + (" (edge)" if r["best_lr_at_edge"] else ""),
                f"{fmt_steps(r['median_steps'], budget)} {fmt_ci(r['ci'], budget)}",
                f"{r['n_reached']}/{r['n_seeds']}",
                "1 (reference)" if r["activation"] == "relu" else fmt_ratio(r["vs_relu"]),
                rank_err[r["activation"]],
                f"{err_by[r['activation']]['mean']:.3f} "
                f"{fmt_ci(err_by[r['activation']]['ci'], digits=3)} "
                f"(lr {err_by[r['activation']]['lr']:g})",
                f"{chi[r['activation']]:.3g}",
            ]
            for r in rows_steps
        ],
    )
    from scipy.stats import spearmanr

    acts = list(rank_steps)
    rho = float(spearmanr([rank_steps[a] for a in acts], [rank_err[a] for a in acts])[0])

    setup = f"""
Data: {spec["dataset"]}. Model: MLP, {spec["depth"]} hidden layers of width {spec["width"]},
LeCun normal init (Var W = 1/fan_in, zero biases: the init SELU was designed for, neutral for
the others), plain SGD, batch {spec["batch_size"]}, {budget} steps, lr grid {spec["lr"]} per
activation, seeds {spec["seed"]}. Activations: all {len(spec["activation"])} registered in
`activations.names()` with their default hyperparameters (leaky_relu 0.01, prelu init 0.25
per layer, elu/celu alpha 1, silu beta 1, gelu tanh approximation as jax.nn), **identity
included as a baseline**: the same network with no nonlinearity is a linear classifier, so an
activation that ranks near it buys nothing on this task within this budget. Steps to target:
first evaluation (every {spec["eval_every"]} steps, on the first {spec["eval_size"]} training
examples) at or below {target:g} training error, median over seeds at the activation's best lr,
95% CI by bootstrap over seeds (censored runs stay censored: an upper end shown as >budget is
undetermined). Final error: training error at step {budget} at the lr with the lowest mean
final error, mean over seeds, bootstrap CI. chi_1 at (sigma_w = 1, sigma_b = 0) from
activations.theory.
"""
    top3 = [r["activation"] for r in rows_steps[:3]]
    top3e = [r["activation"] for r in rows_err[:3]]
    relu_rank = rank_steps.get("relu")
    silu_rank = rank_steps.get("silu")
    smooth = [a for a in ("silu", "gelu", "mish", "elu", "selu") if a in rank_steps]
    above = [a for a in smooth if rank_steps[a] < relu_rank] if relu_rank else []
    sat = [a for a in ("sigmoid", "tanh", "hard_tanh", "soft_sign") if a in rank_steps]
    n = len(rank_steps)
    silu_above = bool(silu_rank and relu_rank and silu_rank < relu_rank)
    silu_vs = "silu ranks above relu" if silu_above else "silu does not rank above relu"
    silu_r = next((r["vs_relu"] for r in rows_steps if r["activation"] == "silu"), None)
    if silu_r is not None:
        ci = silu_r.get("ci") or [None, None]
        sig = ci[1] is not None and ci[1] < 1
        silu_vs += f" (silu/relu steps = {fmt_ratio(silu_r)}: " + (
            "the CI excludes 1)" if sig else "the CI includes 1, so not a measured difference)"
        )
    edge = [r["activation"] for r in rows_steps if r["best_lr_at_edge"]]
    edge_txt = (
        f"The best lr lies on the edge of the grid {spec['lr']} for {len(edge)} of {n} "
        f"activations ({', '.join(edge)}): their numbers could improve with a wider grid."
        if edge
        else "Every best lr lies inside the grid."
    )
    verdict = f"""
Fastest to {target:g}: {", ".join(top3)}; lowest final error: {", ".join(top3e)}. relu ranks
{relu_rank}/{n} by steps and {rank_err.get("relu")}/{n} by final error; silu (Swish-1) ranks
{silu_rank}/{n} and {rank_err.get("silu")}/{n}. Of the smooth ReLU-like activations
({", ".join(smooth)}), {len(above)} rank above relu by steps ({", ".join(above) or "none"}).
The saturating ones rank {", ".join(f"{a} {rank_steps[a]}" for a in sat)} by steps. Spearman
correlation between the two rankings: {rho:.2f}.

Compared with Ramachandran et al.: their Swish > baselines ordering is a test-accuracy result
for large CNNs; here, on a small MLP measured by training speed, {silu_vs}.
{edge_txt} Activations that never reached the target are listed in alphabetical order
in the steps ranking (their medians are all censored at the budget); the final-error ranking
orders them.

Many neighbouring CIs overlap (see the table): with {len(spec["seed"])} seeds and a
{len(spec["lr"])}-value lr grid, ranks that differ by a few places are not distinguishable;
only the gaps between groups whose CIs are disjoint are measured facts. Conditions: one task,
one width/depth, plain SGD, LeCun init. The init is not neutral: at sigma_w = 1 the per-layer
gradient factor chi_1 ranges from {min(chi.values()):.2g} to {max(chi.values()):.2g} across
activations (table), so some start near the edge of chaos and others deep in the ordered
phase; at depth {spec["depth"]} that matters less than it would in a deep net.
"""
    data = {
        "ranking_steps": rows_steps,
        "ranking_final_error": rows_err,
        "spearman_steps_vs_error": rho,
        "identity_included": True,
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
        figures=[fig],
        config=spec,
        data=clean(data),
    )

"""Claim 5 (He, Zhang, Ren, Sun 2015): a 30-layer ReLU net with Xavier init stalls while He init
(Var W = 2 / fan_in) converges; at 22 layers both converge, He earlier.

Measured (``bench.protocol``): a deep ReLU MLP on MNIST-1D at 22 and 30 layers, Xavier-normal vs
He-normal init; the lr of each (depth, init) is tuned on tuning seeds by a bracketing search,
then 8 fresh seeds are measured at it: training-error curves, Kaplan-Meier median steps to a
training-error target (paired ratio Xavier/He with a seed-bootstrap CI), and whether each init
stalls (median final training error over seeds, bootstrap CI, against a stall line).
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
    boot_ci,
    clean,
    combine,
    dir_size,
    fmt_interval,
    fmt_km,
    fmt_ratio,
    km,
    md_table,
    measured_curves,
    median_curve,
    pick,
    protocol_block,
    protocol_md,
    ratio,
    save_figure,
    select,
    side,
    slim_stages,
    theory_chi1,
    tuned_sweep,
    write_report,
)

TITLE = "30-layer ReLU net: Xavier init stalls, He init converges (He et al. 2015)"

CLAIM = """
He, Zhang, Ren & Sun (2015), "Delving deep into rectifiers", Sec. 2.2 and Fig. 3: with ReLU,
initialising Var W = 2 / fan_in (1/2 n Var W = 1 per layer) keeps the signal and gradient
magnitudes constant with depth. A **30-layer** network initialised with the Xavier scheme
(Var W = 1 / n) **stalls** (does not learn), while the same network with their init
**converges**; a **22-layer** network **converges with both**, their init starting to reduce
the error **earlier**. (Published as curves; no step counts to compare with.)
"""

INITS = ("xavier_normal", "he_normal")
LABEL = {
    "xavier_normal": "Xavier (Var W = 2/(fan_in+fan_out))",
    "he_normal": "He (Var W = 2/fan_in)",
}


def spec(size: str, data_dir: str | None = None) -> dict[str, Any]:
    """The sweep: 22- and 30-layer ReLU MLPs, Xavier vs He init, lr tuned per (depth, init)."""
    return {
        "experiment": "he_30_layer",
        "description": "He et al. 2015: 22/30-layer relu MLP, xavier vs he init",
        "dataset": pick(size, tiny="mnist1d", default="mnist1d", full="fashion-mnist"),
        "model": "mlp",
        "activation": "relu",
        "depth": pick(size, tiny=[2], default=[22, 30], full=[22, 30]),
        "width": pick(size, tiny=16, default=64, full=256),
        "init": list(INITS),
        "optimizer": "momentum",
        "momentum": 0.9,
        "batch_size": pick(size, tiny=32, default=128, full=128),
        "steps": pick(size, tiny=20, default=1000, full=10000),
        "eval_every": pick(size, tiny=10, default=25, full=100),
        "eval_size": pick(size, tiny=100, default=500, full=5000),
        "target": pick(size, tiny=0.85, default=0.6, full=0.3),
        "lr": pick(
            size, tiny=[0.01], default=[0.1, 0.03, 0.01, 0.003], full=[0.03, 0.01, 0.003, 0.001]
        ),
        "protocol": "tuned",
        # two tuning seeds: the deep nets cost ~6 s per run on 2 CPU cores, and 8 measurement
        # seeds are the priority; 4 lrs x 2 seeds = 8 lanes, the measurement's program
        "tuning_seeds": pick(size, tiny=[1000], default=[1000, 1001], full=[1000, 1001, 1002]),
        "lr_extensions": pick(size, tiny=0, default=2, full=3),
        "seed": pick(size, tiny=[0, 1], default=list(range(8)), full=list(range(8))),
        # a run that reached the target cannot stall, so stopping it early changes no verdict
        "early_exit": 2,
        "strategy": "auto",
    }


STALL_ERROR = 0.8  # chance is 0.9 on 10 balanced classes


def _final_error(r: dict[str, Any]) -> float:
    """A run's final training error; a failed run (diverged) counts as 1."""
    e = r.get("final_train_error")
    return 1.0 if r.get("diverged") or e is None else float(e)


# --------------------------------------------------------------------------- analysis (pure)


def analyse(records: list[dict[str, Any]], p: dict[str, Any], sp: dict[str, Any]) -> dict[str, Any]:
    """Records of the tuned sweep and the protocol's summary -> per (depth, init) the tuned lr,
    KM median steps, the median final error with its CI and whether it stalled (+1: the CI lies
    above the stall line, -1: below, 0: straddles it), and per depth the paired ratio Xavier/He."""
    meas = [r for r in records if r["stage"] == "measure"]
    rows = {(x["depth"], x["init"]): x for x in p["settings"]}
    # Per hidden (square) layer: Xavier Var W = 2/(2n) = 1/n -> sigma_w = 1; He sigma_w = sqrt 2.
    sw = {"xavier_normal": 1.0, "he_normal": math.sqrt(2.0)}
    by_depth: dict[str, Any] = {}
    for d in sp["depth"]:
        out: dict[str, Any] = {}
        for init in INITS:
            row = rows.get((d, init))
            if row is None:
                continue
            rs = select(meas, depth=d, init=init)
            fe = [_final_error(r) for r in rs]
            ci = boot_ci(fe, "median")
            chi = theory_chi1("relu", sw[init], 0.0)
            out[init] = {
                "lr": row["lr"],
                "bracket_closed": row["bracket"]["closed"],
                "tuning": row["tuning"],
                **km(rs),
                "final_error_median": float(np.median(fe)),
                "final_error_ci": ci,
                "stall": side(ci, STALL_ERROR),
                "runs_ending_above_stall_line": sum(e >= STALL_ERROR for e in fe),
                "chi1": chi,
                "predicted_gradient_attenuation": chi ** (d - 1),
            }
        x, h = select(meas, depth=d, init="xavier_normal"), select(meas, depth=d, init="he_normal")
        out["ratio_xavier_over_he"] = ratio(x, h) if x and h else None
        by_depth[str(d)] = out
    return {
        "target": sp["target"],
        "steps": sp["steps"],
        "stall_error": STALL_ERROR,
        "stall_definition": "median final training error over the measurement seeds at the "
        f"tuned lr >= {STALL_ERROR}, decided by its bootstrap 95% CI",
        "by_depth": by_depth,
        "protocol": protocol_block(p),
    }


def _parts(s: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """(status, words) of the deep part (Xavier stalls, He trains) and of the shallow part
    (both train, He reaches the target first)."""
    depths = sorted(s["by_depth"], key=int)
    deep, shallow = s["by_depth"][depths[-1]], s["by_depth"][depths[0]]
    word = {1: "stalled", -1: "trained", 0: "unclear (CI straddles the stall line)"}

    def stall(g: dict[str, Any]) -> int:
        return side(g["final_error_ci"], s["stall_error"])

    x, h = stall(deep["xavier_normal"]), stall(deep["he_normal"])
    st_deep = HELD if (x, h) == (1, -1) else NOT_HELD if x == -1 or h == 1 else INCONCLUSIVE
    deep_txt = (
        f"{depths[-1]} layers: Xavier {word[x]} (median final error "
        f"{deep['xavier_normal']['final_error_median']:.2f} "
        f"{fmt_interval(deep['xavier_normal']['final_error_ci'], 2)}), He {word[h]} "
        f"({deep['he_normal']['final_error_median']:.2f} "
        f"{fmt_interval(deep['he_normal']['final_error_ci'], 2)})"
    )
    x, h = stall(shallow["xavier_normal"]), stall(shallow["he_normal"])
    r = shallow["ratio_xavier_over_he"]
    earlier = side(r["ci"], 1.0, r["ci_bound"]) if r and r["ratio"] is not None else 0
    if x == 1 or h == 1 or earlier == -1:
        st_shallow = NOT_HELD
    elif (x, h, earlier) == (-1, -1, 1):
        st_shallow = HELD
    else:
        st_shallow = INCONCLUSIVE
    shallow_txt = (
        f"{depths[0]} layers: Xavier {word[x]}, He {word[h]}; Xavier/He steps to target = "
        f"{fmt_ratio(r)} ("
        + {1: "He earlier", -1: "Xavier earlier", 0: "CI includes 1"}[earlier]
        + ")"
    )
    return {"deep": (st_deep, deep_txt), "shallow": (st_shallow, shallow_txt)}


def verdict(s: dict[str, Any]) -> tuple[str, str]:
    """Held when both parts held: at the deepest depth Xavier stalls and He trains, at the
    shallowest both train and the CI of Xavier/He steps lies above 1; not held when either part
    is contradicted; inconclusive otherwise."""
    parts = _parts(s)
    st = combine([v[0] for v in parts.values()])
    text = " ".join(f"{t} -> {st_}." for st_, t in parts.values())
    return st, text


def _smooth(y: np.ndarray, k: int) -> np.ndarray:
    if y.size < k:
        return y
    c = np.convolve(y, np.ones(k) / k, mode="valid")
    return np.concatenate([np.full(k - 1, np.nan), c])


def _plot(ctx: Context, s: dict[str, Any], pairs, spec) -> str:
    import matplotlib.pyplot as plt

    depths = list(s["by_depth"])
    fig, axes = plt.subplots(2, len(depths), figsize=(5.5 * len(depths), 7.5), squeeze=False)
    colors = {"xavier_normal": "tab:red", "he_normal": "tab:blue"}
    k = max(1, spec["steps"] // 60)
    loss_label = "minibatch loss (median over seeds)"
    for j, depth in enumerate(depths):
        ax_e, ax_l = axes[0, j], axes[1, j]
        for init in INITS:
            g = s["by_depth"][depth].get(init)
            if g is None:
                continue
            lab = f"{LABEL[init]}, lr {g['lr']:g}"
            curves = {
                str(i): c
                for i, (r, c) in enumerate(pairs)
                if r["depth"] == int(depth) and r["init"] == init
            }
            mc = median_curve(curves, list(curves), "eval_error")
            if mc is not None:
                st, med, lo, hi = mc
                ax_e.plot(st, med, color=colors[init], lw=2, label=lab)
                ax_e.fill_between(st, lo, hi, color=colors[init], alpha=0.2)
            ml = median_curve(curves, list(curves), "loss")
            if ml is not None:
                st, med, _, _ = ml
                spacing = int(st[1] - st[0]) if st.size > 1 else 1  # slimmed: every n steps
                win = max(1, k // spacing)
                ax_l.plot(st, _smooth(med, win), color=colors[init], lw=2, label=lab)
                loss_label = f"minibatch loss (median over seeds, every {spacing}th step" + (
                    f", mean of {win})" if win > 1 else ")"
                )
        ax_e.axhline(spec["target"], color="k", ls=":", lw=1, label=f"target {spec['target']:g}")
        ax_e.axhline(STALL_ERROR, color="gray", ls="--", lw=1, label=f"stall line {STALL_ERROR:g}")
        ax_e.set_ylim(0, 1)
        ax_e.set_title(f"{depth} layers (ReLU MLP, width {spec['width']})")
        ax_e.set_ylabel("training error (eval subset)")
        ax_l.set_ylabel(loss_label)
        ax_l.axhline(math.log(10), color="gray", ls="--", lw=1, label="log 10 (chance)")
        for ax in (ax_e, ax_l):
            ax.set_xlabel("SGD step")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle("Measurement seeds, each init at its tuned lr; band: min-max over seeds")
    return save_figure(ctx, fig, "curves.png")


# --------------------------------------------------------------------------- report


def report(ctx: Context, sp: dict[str, Any], s: dict[str, Any], figs: list[str]) -> dict[str, Any]:
    """REPORT.md and summary.json from the summary (every number in the text comes from it)."""
    budget, target, width = s["steps"], s["target"], sp["width"]
    rows, ratio_rows = [], []
    for depth, d in s["by_depth"].items():
        for init in INITS:
            g = d.get(init)
            if g is None:
                continue
            rows.append(
                [
                    depth,
                    LABEL[init],
                    f"{g['lr']:g}" + ("" if g["bracket_closed"] else " (open)"),
                    fmt_km(g, budget),
                    f"{g['reached']}/{g['n']} ({g['failed']} failed)",
                    f"{g['final_error_median']:.3f} {fmt_interval(g['final_error_ci'], 3)}",
                    {1: "yes", -1: "no", 0: "unclear"}[g["stall"]],
                    f"{g['runs_ending_above_stall_line']}/{g['n']}",
                    f"{g['chi1']:.3g}",
                    f"{g['predicted_gradient_attenuation']:.2g}",
                ]
            )
        ratio_rows.append([depth, fmt_ratio(d["ratio_xavier_over_he"])])
    table = md_table(
        [
            "depth",
            "init",
            "tuned lr",
            "KM median steps to target [95% CI]",
            "seeds reached",
            "median final error [95% CI]",
            f"stalled (CI above {s['stall_error']:g})",
            f"runs ending >= {s['stall_error']:g}",
            "chi_1 per hidden layer",
            "chi_1^(depth-1): gradient ratio first/last hidden layer at init",
        ],
        rows,
    )
    ratio_table = md_table(["depth", "Xavier/He steps to target [95% CI]"], ratio_rows)
    setup = f"""
Data: {sp["dataset"]}. Model: fully connected ReLU network (bench.models MLP) with
{" and ".join(str(d) for d in sp["depth"])} hidden layers of width {width} (input -> width,
depth-1 square layers, linear head), zero biases, no normalisation. Inits: Xavier normal
(Var W = 2/(fan_in + fan_out), = 1/{width} on the square layers) and He normal
(Var W = 2/fan_in), both truncated normal rescaled to the exact variance. Optimiser: SGD with
momentum {sp["momentum"]}, batch {sp["batch_size"]}, {budget} steps. Training error on the first
{sp["eval_size"]} training examples every {sp["eval_every"]} steps; target {target:g}; a run stops
once its error has been at or below it for {sp["early_exit"]} evaluations in a row. **Stall**
(defined here): {s["stall_definition"]} (chance is 0.9; a diverged run counts as 1).

{protocol_md(s["protocol"])}

Theory: on a square layer Xavier gives sigma_w^2 = 1, so chi_1 = sigma_w^2 / 2 = 0.5 for ReLU
(ordered phase) and the back-propagated mean squared gradient shrinks by 2 per layer:
2^-(depth-1) from the last to the first hidden layer at init; He gives chi_1 = 1 (edge of
chaos).
"""
    st, head = verdict(s)
    verdict_md = f"""
**{st.capitalize()}.** {head}

Conditions: plain ReLU MLP of width {width} on {sp["dataset"]}, momentum SGD, each init at its
own tuned lr, {budget} steps. He et al.'s nets were convolutional (fan_in = k^2 c, wider),
trained on ImageNet for far longer; their Xavier variant also used Var W = 1/n. Under Xavier
the gradient reaching the first hidden layer is 2^-(depth-1) of the last one's at init (theory
column), so where "stalls" begins depends on the budget and the lr.
"""
    data = {**s, "status": st, "results_bytes": dir_size(ctx.out_dir)}
    return write_report(
        ctx,
        title=TITLE,
        claim=CLAIM,
        setup=setup,
        results_md=f"{ratio_table}\n\n{table}\n\n" + summary._LEGEND,
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
    fig = _plot(ctx, s, measured_curves(t), sp)
    slim_stages(t, every=10)
    return report(ctx, sp, s, [fig])

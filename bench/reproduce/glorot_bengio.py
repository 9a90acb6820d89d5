"""Claim 4 (Glorot & Bengio 2010): back-propagated gradients at init, and sigmoid saturation.

Part A (at initialisation, no training): per hidden layer the mean squared gradient of each
example's loss with respect to the layer's pre-activations (``grad_sq`` of
``bench.diagnostics.at_init``, the paper's "back-propagated gradient" dCost/ds), for tanh,
sigmoid and softsign MLPs of 5 hidden layers on MNIST-1D, with the "standard" init
U[-1/sqrt(fan_in), 1/sqrt(fan_in)] and the normalised init (``xavier_uniform``), several seeds.
The statistic is the ratio bottom / top (layer 1 over layer 5) and the per-layer attenuation
``grad_sq[l] / grad_sq[l + 1]``. Theory (mean field, ``activations.theory``): layer l's
weights have ``sigma_l^2 = fan_in Var W_l`` (standard: 1/3; normalised: 2 fan_in / (fan_in +
fan_out), 1 for the square hidden layers), ``q_1 = sigma_1^2 E[x^2]``, ``q_{l+1} = L(q_l)`` with
``sigma_{l+1}``, and the predicted attenuation is ``chi(q_l) = sigma_{l+1}^2 E[phi'(sqrt(q_l)
z)^2]``. The paper's linear-regime argument (its Eq. 14) also says that the weight gradients'
variance is about the same in every layer; the RMS weight gradient per layer is reported.

Part B (training): a sweep of 4-hidden-layer sigmoid and tanh MLPs with the standard init and
``diagnostics = true``: the mean and spread of each hidden layer's activations and its
saturation fraction over training (the paper's Fig. 2 and 3: with sigmoid the top hidden
layer is driven to 0 early and escapes only slowly).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from activations import theory
from bench.reproduce._common import (
    SLIM_KEEP,
    Context,
    boot_ci,
    clean,
    combine,
    dir_size,
    fmt_km,
    fmt_ratio,
    grid_block,
    km,
    md_table,
    measured_curves,
    pick,
    proportion_ci,
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
from bench.reproduce._common import fmt_interval as _ci
from bench.reproduce._common import fmt_num as _f

TITLE = "Gradients at init and sigmoid saturation (Glorot & Bengio 2010)"

INITS = ("standard", "xavier_uniform")
ACTS_A = ("tanh", "softsign", "sigmoid")
ACTS_B = ("sigmoid", "tanh")
_REGISTRY_NAME = {"softsign": "soft_sign"}  # activations' registered names


def _reg(act: str) -> str:
    return _REGISTRY_NAME.get(act, act)


def sigma_sq(init: str, fan_in: int, fan_out: int) -> float:
    """``fan_in * Var W`` of a layer under ``init`` (``bench.models``' schemes)."""
    if init == "standard":
        return 1.0 / 3.0
    if init == "xavier_uniform":
        return 2.0 * fan_in / (fan_in + fan_out)
    raise ValueError(f"init: no theory here for {init!r}")


def predict(act: str, init: str, *, depth: int, width: int, n_in: int, x_sq: float) -> dict:
    """Mean-field ``q_l``, attenuation ``chi(q_l)`` (l = 1 .. depth - 1) and the gradient of
    each layer relative to the top hidden layer (1 at l = depth)."""
    a = _reg(act)
    s_first, s_hidden = sigma_sq(init, n_in, width), sigma_sq(init, width, width)
    q = np.empty(depth)
    q[0] = s_first * x_sq  # the input is not passed through phi; zero biases
    for i in range(1, depth):
        q[i] = theory.length_map(a, q[i - 1], math.sqrt(s_hidden), 0.0)
    att = np.asarray(theory.chi(a, q[:-1], math.sqrt(s_hidden)), np.float64)
    rel = np.append(np.cumprod(att[::-1])[::-1], 1.0)
    return {"q": q, "attenuation": att, "grad_rel": rel, "sigma_sq": [s_first, s_hidden]}


def _gmean(x: np.ndarray, axis: Any = None) -> Any:
    return np.exp(np.mean(np.log(x), axis=axis))


# --------------------------------------------------------------------------- part A


def part_a(
    ctx: Context, *, acts: tuple[str, ...], depth: int, width: int, seeds: int
) -> dict[str, Any]:
    from bench import data, diagnostics

    ds = data.load("mnist1d")
    n = min(512, len(ds.x_train))
    x_sq = float(np.mean(np.square(ds.x_train[:n], dtype=np.float64)))
    n_in = int(np.prod(ds.x_train.shape[1:]))
    out: dict[str, Any] = {}
    for act in acts:
        for init in INITS:
            spec = {
                "dataset": "mnist1d",
                "activation": _reg(act),
                "depth": depth,
                "width": width,
                "init": init,
                "diag_size": n,
                "eval_size": n,
            }
            m = diagnostics.at_init(spec, seeds=seeds, dataset=ds)
            g = np.asarray(m["grad_sq"], np.float64)  # (seeds, L)
            rel = g / g[:, -1:]
            ratio = rel[:, 0]  # bottom / top, per seed
            att = g[:, :-1] / g[:, 1:]
            # Weight gradients: RMS per entry (the first layer has n_in x width entries).
            sizes = np.array([n_in * width] + [width * width] * (depth - 1), np.float64)
            w_rms = np.asarray(m["grad_norm_w"], np.float64) / np.sqrt(sizes)
            w_ratio = w_rms[:, 0] / w_rms[:, -1]
            pred = predict(act, init, depth=depth, width=width, n_in=n_in, x_sq=x_sq)
            out[f"{act}/{init}"] = {
                "activation": act,
                "init": init,
                "sigma_sq_first_hidden": pred["sigma_sq"],
                "q_measured": np.median(m["q"], 0).tolist(),
                "q_theory": pred["q"].tolist(),
                "grad_rel_median": np.median(rel, 0).tolist(),
                "grad_rel_min": rel.min(0).tolist(),
                "grad_rel_max": rel.max(0).tolist(),
                "grad_rel_theory": pred["grad_rel"].tolist(),
                "attenuation_gmean": _gmean(att, 0).tolist(),
                "attenuation_theory": pred["attenuation"].tolist(),
                "bottom_top_median": float(np.median(ratio)),
                "bottom_top_ci95": boot_ci(ratio.tolist(), "median"),
                "bottom_top_theory": float(pred["grad_rel"][0]),
                "bottom_top_per_seed": ratio.tolist(),
                "weight_grad_rms_bottom_top_median": float(np.median(w_ratio)),
                "weight_grad_rms_bottom_top_ci95": boot_ci(w_ratio.tolist(), "median"),
            }
    return {"acts": list(acts), "x_sq": x_sq, "n_in": n_in, "examples": n, "cells": out}


def _plot_a(ctx: Context, a: dict, depth: int) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = np.arange(1, depth + 1)
    acts = a["acts"]
    fig, axes = plt.subplots(
        1, len(acts), figsize=(4 * len(acts), 3.8), layout="constrained", squeeze=False
    )
    for ax, act in zip(axes[0], acts, strict=True):
        for init, color in zip(INITS, ("C3", "C0"), strict=True):
            c = a["cells"][f"{act}/{init}"]
            ax.plot(layers, c["grad_rel_median"], "o-", color=color, ms=4, label=f"{init}")
            ax.fill_between(layers, c["grad_rel_min"], c["grad_rel_max"], color=color, alpha=0.2)
            ax.plot(layers, c["grad_rel_theory"], "--", color=color, lw=1, label=f"{init} theory")
        ax.set(yscale="log", xlabel="hidden layer (1 = bottom)", title=act, xticks=layers)
        ax.set_ylabel("mean sq. dLoss/dh_l / top layer")
        ax.legend(fontsize=7)
    fig.suptitle(
        "Back-propagated gradient at init, relative to the top hidden layer "
        "(median, min-max over seeds)"
    )
    return save_figure(ctx, fig, "gradients_at_init.png")


# --------------------------------------------------------------------------- part B


def spec_b(size: str) -> dict[str, Any]:
    """Part B's sweep: sigmoid and tanh MLPs with diagnostics, lr tuned per activation."""
    every = pick(size, tiny=10, default=100, full=250)
    return {
        "experiment": "glorot-bengio-saturation",
        "dataset": "mnist1d",
        "activation": pick(size, tiny=["sigmoid"], default=list(ACTS_B), full=list(ACTS_B)),
        "depth": 4,
        "width": pick(size, tiny=16, default=256, full=1000),
        "init": "standard",
        "optimizer": "sgd",
        "batch_size": pick(size, tiny=16, default=16, full=10),
        "steps": pick(size, tiny=40, default=4000, full=20000),
        "lr": pick(size, tiny=[0.1], default=[0.03, 0.1, 0.3], full=[0.01, 0.03, 0.1, 0.3]),
        "protocol": "tuned",
        # two tuning seeds and one extension per side: a run costs ~10 s on 2 CPU cores, and
        # the 8 measurement seeds come first
        "tuning_seeds": pick(size, tiny=[1000], default=[1000, 1001], full=[1000, 1001, 1002]),
        "lr_extensions": pick(size, tiny=0, default=1, full=3),
        "seed": pick(size, tiny=[0, 1], default=list(range(8)), full=list(range(8))),
        "eval_every": every,
        "eval_size": pick(size, tiny=64, default=1000, full=1000),
        "target": 0.5,
        # diagnostics need the whole run (no early_exit)
        "diagnostics": True,
        "diag_every": every,
        "diag_size": pick(size, tiny=64, default=512, full=512),
    }


def spec_a(size: str) -> dict[str, Any]:
    """Part A's measurement at initialisation."""
    return {
        "depth": 5,
        "width": pick(size, tiny=32, default=1000, full=1000),
        "seeds": pick(size, tiny=2, default=8, full=16),
        "activations": list(pick(size, tiny=("tanh",), default=ACTS_A, full=ACTS_A)),
    }


TOP_LOW = 0.1  # the sigmoid top layer's mean activation counts as driven to 0 below this


def analyse_b(pairs: list[tuple[dict, dict]], p: dict[str, Any], sp: dict[str, Any]) -> dict:
    """Part B: (record, curves) of the measurement runs and the protocol's summary -> per
    activation the tuned lr, KM median steps to the target, and the per-layer activations over
    training (medians over the measurement seeds; diverged runs counted and left out)."""
    cells: dict[str, Any] = {}
    records = [r for r, _ in pairs]
    for row in p["settings"]:
        act = row["activation"]
        rs = [(r, c) for r, c in pairs if r["activation"] == act]
        ok = [(r, c) for r, c in rs if not r.get("diverged")]
        c: dict[str, Any] = {
            "activation": act,
            "lr": row["lr"],
            "bracket_closed": row["bracket"]["closed"],
            **km(select(records, activation=act)),
            "n_runs": len(ok),
            "n_diverged": len(rs) - len(ok),
        }
        if ok:
            steps = ok[0][1]["diag_steps"]
            mean = np.stack([x["diag_act_mean"] for _, x in ok])  # (S, D, L)
            var = np.stack([x["diag_act_var"] for _, x in ok])
            sat = np.stack([x["diag_saturation_fraction"] for _, x in ok])
            top = mean[:, :, -1]
            lo_idx = np.argmin(top, axis=1)
            below = [
                int(steps[np.flatnonzero(t < TOP_LOW)[0]]) if np.any(t < TOP_LOW) else None
                for t in top
            ]
            c.update(
                {
                    "final_train_error": [r.get("final_train_error") for r, _ in ok],
                    "act_mean_init": np.median(mean[:, 0], 0).tolist(),
                    "act_mean_final": np.median(mean[:, -1], 0).tolist(),
                    "act_mean_min_over_training": np.median(mean.min(1), 0).tolist(),
                    "top_min_mean": top[np.arange(len(ok)), lo_idx].tolist(),
                    "top_min_step": [int(steps[i]) for i in lo_idx],
                    "top_first_step_below_0.1": below,
                    "saturation_max": np.median(sat.max(1), 0).tolist(),
                    "_steps": steps,
                    "_mean": np.median(mean, 0),
                    "_std": np.median(np.sqrt(np.maximum(var, 0)), 0),
                    "_sat": np.median(sat, 0),
                    "_err": np.median(np.stack([x["eval_error"] for _, x in ok]), 0),
                    "_err_steps": ok[0][1]["eval_steps"],
                }
            )
        cells[act] = c
    sig, tanh = select(records, activation="sigmoid"), select(records, activation="tanh")
    return {
        "cells": cells,
        "sigmoid_over_tanh": ratio(sig, tanh) if sig and tanh else None,
        "protocol": protocol_block(p),
    }


def _plot_b_cells(b: dict) -> list[dict]:
    return [c for c in b["cells"].values() if c["n_runs"]]


def _plot_b(ctx: Context, b: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = _plot_b_cells(b)
    fig, axes = plt.subplots(
        2, len(cells), figsize=(3.6 * len(cells), 6), layout="constrained", squeeze=False
    )
    for j, c in enumerate(cells):
        steps = c["_steps"]
        ax, ax2 = axes[0, j], axes[1, j]
        for layer in range(c["_mean"].shape[1]):
            m, s = c["_mean"][:, layer], c["_std"][:, layer]
            (line,) = ax.plot(steps, m, lw=1.3, label=f"layer {layer + 1}")
            ax.fill_between(steps, m - s, m + s, color=line.get_color(), alpha=0.12, lw=0)
            ax2.plot(
                steps,
                c["_sat"][:, layer],
                lw=1.3,
                color=line.get_color(),
                label=f"layer {layer + 1}",
            )
        ax.set(
            title=f"{c['activation']}, tuned lr {c['lr']:g}",
            xlabel="step",
            ylabel="activation mean (± sd)",
        )
        ax2.plot(c["_err_steps"], c["_err"], "k--", lw=1, label="training error")
        ax2.set(xlabel="step", ylabel="saturation fraction", ylim=(-0.02, 1.02))
        ax2.legend(fontsize=7)
        ax.legend(fontsize=7)
    fig.suptitle(
        "Standard init, 4 hidden layers: per-layer activations during training "
        "(median over the measurement seeds)"
    )
    return save_figure(ctx, fig, "saturation_training.png")


# --------------------------------------------------------------------------- the claim

CLAIM = """
Glorot & Bengio 2010 (Understanding the difficulty of training deep feedforward neural
networks), as recorded in REFERENCES.md: with the "standard" init W ~ U[-1/sqrt(n), 1/sqrt(n)]
(n Var W = 1/3) the variance of the back-propagated gradients decreases from the top layer
downwards at initialisation; the normalised init Var W = 2 / (n_in + n_out) keeps it roughly
constant. Setup: fully connected nets of 1-5 hidden layers of 1000 units, sigmoid / tanh /
softsign. With sigmoid the top hidden layer saturates at 0 early in training (and a depth-5 net
never escapes). Published test errors, 5 hidden layers, CIFAR-10: sigmoid 57.28%, tanh 55.9%,
tanh + normalised init 52.92% (not reproduced here: no CIFAR-10 on this machine).
Mean-field reading of the first claim: standard init is sigma_w^2 = 1/3, so for tanh near the
origin chi_1 ~ 1/3 per layer; the normalised init is sigma_w^2 = 1 for square layers (chi ~ 1).
"""


def _within_2(ci: list[float] | tuple[float, float] | None) -> int:
    """-1 when the CI lies inside [1/2, 2], +1 when wholly outside it, 0 otherwise."""
    if not ci or ci[0] is None or ci[1] is None:
        return 0
    lo, hi = ci
    if 0.5 <= lo and hi <= 2.0:
        return -1
    return 1 if hi < 0.5 or lo > 2.0 else 0


def _parts(s: dict[str, Any]) -> list[tuple[str, int]]:
    """(status, sign) of the three parts, in ``verdict``'s order."""
    cells = s["part_a"]["cells"]
    std = [side(c["bottom_top_ci95"], 1.0) for c in cells.values() if c["init"] == "standard"]
    a1 = -1 if std and all(x == -1 for x in std) else 1 if any(x == 1 for x in std) else 0
    a2 = _within_2(cells["tanh/xavier_uniform"]["bottom_top_ci95"])
    b = s["part_b"]["sigmoid_top_to_zero"]
    b_sign = side(b["ci"], 0.5) if b["n"] else 0
    return [(status(a1, -1), a1), (status(a2, -1), a2), (status(b_sign, 1), b_sign)]


def verdict(s: dict[str, Any]) -> tuple[str, str]:
    """Three parts. A (standard init): held when the 95% CI of layer 1 / layer 5 of the
    back-propagated gradient lies below 1 for every activation, not held when one lies above 1.
    A (normalised init): held when tanh's CI lies inside [1/2, 2], not held when wholly outside.
    B: held when the 95% CI (Clopper-Pearson) of the share of sigmoid measurement runs whose
    top hidden layer's mean activation fell below 0.1 lies above 1/2, not held when below.
    The claim holds when every part holds, fails when any part fails."""
    (st1, _), (st2, _), (st3, _) = parts = _parts(s)
    cells = s["part_a"]["cells"]
    t_std, t_norm = cells["tanh/standard"], cells["tanh/xavier_uniform"]
    b = s["part_b"]["sigmoid_top_to_zero"]
    std = "; ".join(
        f"{c['activation']} {_f(c['bottom_top_median'])} {_ci(c['bottom_top_ci95'])} "
        f"(theory {_f(c['bottom_top_theory'])})"
        for c in cells.values()
        if c["init"] == "standard"
    )
    text = (
        f"Part A, standard init, layer 1 / layer 5 of the back-propagated gradient: {std} -> "
        f"{st1}. Normalised init, tanh: {_f(t_norm['bottom_top_median'])} "
        f"{_ci(t_norm['bottom_top_ci95'])} (theory {_f(t_norm['bottom_top_theory'])}; claim: "
        f"within a factor 2) -> {st2}. The RMS weight gradient of layer 1 over layer 5 with the "
        f"standard init (tanh) was {_f(t_std['weight_grad_rms_bottom_top_median'])} "
        f"{_ci(t_std['weight_grad_rms_bottom_top_ci95'])} (the paper's Eq. 14: about 1). "
        f"Part B: the sigmoid net's top hidden layer had a mean activation below {TOP_LOW:g} at "
        f"some point in {b['k']}/{b['n']} measurement runs (95% CI of the share "
        f"{_ci(b['ci'], 2)}; claim: most runs) -> {st3}."
    )
    return combine([x[0] for x in parts]), text


def run(ctx: Context) -> dict[str, Any]:
    sa, sb = spec_a(ctx.size), spec_b(ctx.size)
    depth_a, width_a, seeds_a = sa["depth"], sa["width"], sa["seeds"]
    acts_a = tuple(sa["activations"])
    a = part_a(ctx, acts=acts_a, depth=depth_a, width=width_a, seeds=seeds_a)
    fig_a = _plot_a(ctx, a, depth_a)
    t = tuned_sweep(ctx, sb)
    b = analyse_b(measured_curves(t), t.protocol, sb)
    fig_b = _plot_b(ctx, b)
    slim_stages(
        t,
        keep=(
            *SLIM_KEEP,
            "diag_steps",
            *(f"diag_{m}" for m in ("act_mean", "act_var", "saturation_fraction")),
        ),
    )
    s = summarise(a, b)
    s["part_b"]["run_dir"] = str(t.root)
    return report(ctx, sa, sb, s, [fig_a, fig_b])


def summarise(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Part A's cells and part B's analysis -> the claim's summary (JSON-safe)."""
    sig = b["cells"].get("sigmoid", {})
    hits = [x is not None for x in sig.get("top_first_step_below_0.1", [])]
    share = {"k": int(sum(hits)), "n": len(hits), "ci": proportion_ci(int(sum(hits)), len(hits))}
    cells_b = {
        k: {kk: vv for kk, vv in c.items() if not kk.startswith("_")} for k, c in b["cells"].items()
    }
    return {
        "part_a": a,
        "part_b": {
            "cells": cells_b,
            "sigmoid_over_tanh": b["sigmoid_over_tanh"],
            "sigmoid_top_to_zero": share,
        },
        "protocol": {
            "part_a": grid_block(
                list(range(len(next(iter(a["cells"].values()))["bottom_top_per_seed"]))),
                "percentile bootstrap over seeds",
                note="at initialisation: no training, no lr",
            ),
            "part_b": b["protocol"],
        },
    }


def report(ctx, sa, sb, s, figs) -> dict[str, Any]:
    """REPORT.md and summary.json from the summary (every number in the text comes from it)."""
    a = s["part_a"]
    depth_a, width_a, seeds_a, acts_a = sa["depth"], sa["width"], sa["seeds"], sa["activations"]
    # ---- tables
    rows_a = []
    for act in acts_a:
        for init in INITS:
            c = a["cells"][f"{act}/{init}"]
            att = ", ".join(f"{x:.2f}" for x in c["attenuation_gmean"])
            att_t = ", ".join(f"{x:.2f}" for x in c["attenuation_theory"])
            rows_a.append(
                [
                    act,
                    init,
                    f"{c['sigma_sq_first_hidden'][1]:.3g}",
                    f"{_f(c['bottom_top_median'])} {_ci(c['bottom_top_ci95'])}",
                    _f(c["bottom_top_theory"]),
                    att,
                    att_t,
                    f"{_f(c['weight_grad_rms_bottom_top_median'])} "
                    f"{_ci(c['weight_grad_rms_bottom_top_ci95'])}",
                ]
            )
    table_a = md_table(
        [
            "activation",
            "init",
            "sigma_w^2 (hidden)",
            "grad_sq layer 1 / layer 5, median [95% CI]",
            "theory",
            "attenuation l=1..4 (gmean over seeds)",
            "theory chi(q_l)",
            "RMS weight grad layer 1 / layer 5",
        ],
        rows_a,
    )
    budget = sb["steps"]
    rows_b = []
    for c in s["part_b"]["cells"].values():
        if not c["n_runs"]:
            rows_b.append([c["activation"], f"{c['lr']:g}", "all diverged"] + [""] * 7)
            continue
        first_below = [x for x in c["top_first_step_below_0.1"] if x is not None]
        rows_b.append(
            [
                c["activation"],
                f"{c['lr']:g}" + ("" if c["bracket_closed"] else " (open)"),
                c["n_runs"],
                fmt_km(c, budget),
                ", ".join(f"{x:.2f}" for x in c["act_mean_init"]),
                ", ".join(f"{x:.2f}" for x in c["act_mean_min_over_training"]),
                ", ".join(f"{x:.2f}" for x in c["act_mean_final"]),
                (
                    f"{len(first_below)}/{c['n_runs']}"
                    + (f" (steps {', '.join(map(str, first_below))})" if first_below else "")
                    if c["activation"] == "sigmoid"
                    else "n/a (centred)"
                ),
                ", ".join(f"{x:.2f}" for x in c["saturation_max"]),
                _f(float(np.median([e for e in c["final_train_error"] if e is not None]))),
            ]
        )
    table_b = md_table(
        [
            "activation",
            "tuned lr",
            "runs",
            f"KM median steps to {sb['target']:g} [95% CI]",
            "act mean per layer at init (1..4)",
            "lowest during training",
            "final",
            f"top layer mean < {TOP_LOW:g}",
            "max saturation fraction per layer",
            "final training error (median)",
        ],
        rows_b,
    )
    r = s["part_b"]["sigmoid_over_tanh"]
    setup = f"""
Part A (init): `bench.diagnostics.at_init`, MLP 40 -> {width_a} x {depth_a} -> 10 on MNIST-1D (the
first {a["examples"]} training examples, E[x^2] = {a["x_sq"]:.3f}), zero biases, {seeds_a} seeds
(the statistical unit; no training, no lr), inits "standard" (U[+-1/sqrt(fan_in)]) and
"xavier_uniform" (normalised). grad_sq = mean over examples and units of (d loss_b / d h_l)^2;
ratio bottom/top per seed = grad_sq(layer 1) / grad_sq(layer 5), its median over seeds with a
percentile-bootstrap 95% CI. Theory: mean-field q_l and chi(q_l) from `activations.theory`
(length_map, chi) with each layer's sigma_w^2 = fan_in Var W (first layer:
{sigma_sq("standard", a["n_in"], width_a):.3g} standard,
{sigma_sq("xavier_uniform", a["n_in"], width_a):.3g} normalised). softsign is the registered
`soft_sign`.

Part B (training): 4-hidden-layer MLPs (width {sb["width"]}) on MNIST-1D, sigmoid and tanh,
standard init, zero biases, SGD, batch {sb["batch_size"]}, {budget} steps, target
{sb["target"]:g} training error; `diagnostics = true` every {sb["diag_every"]} steps on the
first {sb["diag_size"]} training examples: act_mean / act_var (mean and variance of phi(h_l) over
examples and units) and saturation_fraction (|phi'(h)| < 1% of its maximum) per layer. Medians
over the measurement seeds (diverged runs counted and left out).

{protocol_md(s["protocol"]["part_b"])}

Command: `{ctx.command}`.
"""
    results_md = (
        "### A. Back-propagated gradients at initialisation\n\n"
        "Published: qualitative (Glorot & Bengio Fig. 7: gradient histograms per layer); "
        "the claim is the trend, decreasing towards the input with the standard init, about "
        "constant with the normalised one.\n\n"
        + table_a
        + "\n\n### B. Activations during training (standard init)\n\n"
        "Published (Fig. 2): sigmoid, 4 hidden layers: the top hidden layer's mean activation "
        "drops to ~0 within the first epochs and stays saturated for a long time; the lower "
        "layers stay near 0.5. Fig. 3 (tanh): layers saturate one after another from layer 1 "
        "up.\n\n"
        + table_b
        + f"\n\nSteps to {sb['target']:g} training error, sigmoid/tanh: {fmt_ratio(r)} (paired "
        "over the measurement seeds)."
    )
    st, text = verdict(s)
    return write_report(
        ctx,
        title=TITLE,
        claim=CLAIM,
        setup=setup,
        results_md=results_md,
        verdict=f"**{st.capitalize()}.** {text}",
        figures=figs,
        config={"part_a": sa, "part_b": sb},
        data=clean({**s, "status": st, "results_bytes": dir_size(ctx.out_dir)}),
    )

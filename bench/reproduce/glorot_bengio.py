"""Claim 4 (Glorot & Bengio 2010): back-propagated gradients at init, and sigmoid saturation.

Part A (at initialisation, no training): per hidden layer the mean squared gradient of each
example's loss with respect to the layer's pre-activations (``grad_sq`` of
``bench.diagnostics.at_init``, the paper's "back-propagated gradient" dCost/ds), for tanh,
sigmoid and softsign MLPs of 5 hidden layers of 1000 units on Fashion-MNIST (784 inputs, so
the normalised first layer has fan_in Var W = 2 784 / (784 + 1000), as in the paper's 28x28
inputs), with the "standard" init U[-1/sqrt(fan_in), 1/sqrt(fan_in)] and the normalised init
(``xavier_uniform``), several seeds. The statistic is the ratio bottom / top (layer 1 over
layer 5) and the per-layer attenuation ``grad_sq[l] / grad_sq[l + 1]``. Theory (mean field,
``activations.theory``): layer l's weights have ``sigma_l^2 = fan_in Var W_l`` (standard: 1/3;
normalised: 2 fan_in / (fan_in + fan_out), 1 for the square hidden layers), ``q_1 = sigma_1^2
E[x^2]``, ``q_{l+1} = L(q_l)`` with ``sigma_{l+1}``, and the predicted attenuation is ``chi(q_l)
= sigma_{l+1}^2 E[phi'(sqrt(q_l) z)^2]``. The paper's linear-regime argument (its Eq. 14) also
says that the weight gradients' variance is about the same in every layer; the RMS weight
gradient per layer is reported.

Part B (training, the paper's Fig. 2): 4-hidden-layer sigmoid MLPs on Fashion-MNIST with the
standard init and ``diagnostics = true``, the lr tuned by ``bench.protocol`` over a grid that
must bracket it, measured on fresh seeds. Per run: whether the top hidden layer's mean
activation was driven towards 0 (below ``SAT_FRACTION`` of its value at init) and the step at
which it **escapes** (first diagnostic step after that at which it is back at or above that
line); runs that never escape are censored at the budget (Kaplan-Meier), never dropped.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from activations import theory
from bench.reproduce._common import (
    SLIM_KEEP,
    Context,
    boot_ci,
    clean,
    combine,
    dir_size,
    fmt_km,
    grid_block,
    km,
    md_table,
    measured_curves,
    pick,
    proportion_ci,
    protocol_block,
    protocol_md,
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
_REGISTRY_NAME = {"softsign": "soft_sign"}  # activations' registered names
DATASET = "fashion-mnist"


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


def spec_a(size: str) -> dict[str, Any]:
    """Part A's measurement at initialisation."""
    return {
        "dataset": DATASET,
        "data": {"limit_train": pick(size, tiny=512, default=20000, full=None)},
        "depth": 5,
        "width": pick(size, tiny=32, default=1000, full=1000),
        "seeds": pick(size, tiny=2, default=8, full=16),
        "examples": 512,
        "activations": list(pick(size, tiny=("tanh",), default=ACTS_A, full=ACTS_A)),
    }


def pixels(ds: Any) -> Any:
    """The dataset with its images back on the unstandardised [0, 1] pixel scale. The
    harness standardises them, x = (p - m) / s, an affine map, so the training images' smallest
    value is pixel 0 and their largest pixel 1 (Fashion-MNIST has both)."""
    lo, hi = float(np.min(ds.x_train)), float(np.max(ds.x_train))

    def f(x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float64) - lo) / (hi - lo)).astype(np.float32)

    return ds._replace(x_train=f(ds.x_train), x_test=f(ds.x_test))


def _cells(sa: dict[str, Any], ds: Any) -> dict[str, Any]:
    """Part A's measurement on one version of the inputs."""
    from bench import diagnostics

    depth, width, seeds = sa["depth"], sa["width"], sa["seeds"]
    n = min(sa["examples"], len(ds.x_train))
    x_sq = float(np.mean(np.square(ds.x_train[:n], dtype=np.float64)))
    n_in = int(np.prod(ds.x_train.shape[1:]))
    out: dict[str, Any] = {}
    for act in sa["activations"]:
        for init in INITS:
            spec = {
                "dataset": sa["dataset"],
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
                "grad_rel_ci95": [boot_ci(rel[:, i].tolist(), "median") for i in range(depth)],
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
    return {"x_sq": x_sq, "n_in": n_in, "examples": n, "cells": out}


def part_a(sa: dict[str, Any], ds: Any) -> dict[str, Any]:
    """Part A on unstandardised [0, 1] pixels (``cells``, what the verdict reads) and on
    the harness's standardised images (``standardised``, the inputs part B trains on)."""
    px = _cells(sa, pixels(ds))
    st = _cells(sa, ds)
    return {"acts": list(sa["activations"]), **px, "standardised": st}


def _plot_a(ctx: Context, a: dict, depth: int) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = np.arange(1, depth + 1)
    acts = a["acts"]
    versions = [("[0, 1] pixels", a), ("standardised", a["standardised"])]
    fig, axes = plt.subplots(
        len(versions),
        len(acts),
        figsize=(4 * len(acts), 3.6 * len(versions)),
        layout="constrained",
        squeeze=False,
    )
    for row, (name, v) in enumerate(versions):
        for ax, act in zip(axes[row], acts, strict=True):
            for init, color in zip(INITS, ("C3", "C0"), strict=True):
                c = v["cells"][f"{act}/{init}"]
                med = np.asarray(c["grad_rel_median"])
                ci = np.array([x if x else (np.nan, np.nan) for x in c["grad_rel_ci95"]], float)
                ax.errorbar(
                    layers,
                    med,
                    yerr=[med - ci[:, 0], ci[:, 1] - med],
                    fmt="o",
                    color=color,
                    ms=4,
                    capsize=3,
                    label=f"{init} (measured)",
                )
                ax.plot(
                    layers, c["grad_rel_theory"], "--", color=color, lw=1, label=f"{init} theory"
                )
            ax.set(
                yscale="log",
                xlabel="hidden layer (1 = bottom)",
                title=f"{act}, {name} (E[x^2] = {v['x_sq']:.2f})",
                xticks=layers,
            )
            ax.set_ylabel("mean sq. dLoss/dh_l / top layer")
            ax.legend(fontsize=7)
    fig.suptitle(
        f"Back-propagated gradient at init, {a['n_in']} inputs, relative to the top hidden "
        "layer (median over seeds, 95% bootstrap CI)"
    )
    return save_figure(ctx, fig, "gradients_at_init.png")


# --------------------------------------------------------------------------- part B

# The top layer counts as driven to 0 below this fraction of its mean activation at init
# (0.5 for sigmoid at zero bias: the line is 0.05), and as escaped once back at or above it.
SAT_FRACTION = 0.1


def spec_b(size: str) -> dict[str, Any]:
    """Part B's sweep: 4-hidden-layer sigmoid MLPs with diagnostics, lr tuned (bracketed)."""
    every = pick(size, tiny=10, default=100, full=250)
    return {
        "experiment": "glorot-bengio-saturation",
        "dataset": DATASET,
        # 20k images: 4 epochs of the default budget; full: all 60k
        "data": {"limit_train": pick(size, tiny=512, default=20000, full=None)},
        "activation": pick(size, tiny=["sigmoid"], default=["sigmoid"], full=["sigmoid", "tanh"]),
        "depth": 4,
        "width": pick(size, tiny=16, default=256, full=1000),
        "init": "standard",
        "optimizer": "sgd",
        "batch_size": pick(size, tiny=16, default=16, full=10),
        "steps": pick(size, tiny=40, default=4000, full=40000),
        # pilot (1 seed, 3000 steps): 0.3 slow, 1 reaches 0.5 error at 1500 steps, 3 noisy;
        # extended x3.3 on an edge
        "lr": pick(size, tiny=[0.3], default=[0.3, 1.0, 3.0], full=[0.1, 0.3, 1.0, 3.0]),
        "protocol": "tuned",
        "tuning_seeds": pick(size, tiny=[1000], default=[1000, 1001], full=[1000, 1001, 1002]),
        "lr_extensions": pick(size, tiny=0, default=2, full=3),
        "seed": pick(size, tiny=[0, 1], default=list(range(8)), full=list(range(8))),
        "eval_every": every,
        "eval_size": pick(size, tiny=64, default=1000, full=1000),
        "target": pick(size, tiny=0.85, default=0.5, full=0.5),
        # diagnostics need the whole run (no early_exit)
        "diagnostics": True,
        "diag_every": every,
        "diag_size": pick(size, tiny=64, default=512, full=512),
    }


def escape(steps: ArrayLike, top_mean: ArrayLike, fraction: float = SAT_FRACTION) -> dict[str, Any]:
    """The top layer's saturation in one run, from its mean activation at each diagnostic step:
    ``line = fraction * mean at step 0``; ``dropped``: the first step below the line (None:
    never); ``escaped``: the first later step at or above it (None: never, censored);
    ``min``: the lowest mean. NaN (a diverged run) is never above the line."""
    m, steps = np.asarray(top_mean, np.float64), np.asarray(steps)
    line = fraction * float(m[0])
    below = np.flatnonzero(m < line)
    out: dict[str, Any] = {
        "line": line,
        "min": float(np.nanmin(m)),
        "dropped": None,
        "escaped": None,
    }
    if below.size:
        i = int(below[0])
        out["dropped"] = int(steps[i])
        back = np.flatnonzero(m[i:] >= line)  # NaN >= line is False
        if back.size:
            out["escaped"] = int(steps[i + int(back[0])])
    return out


def _km_events(times: Sequence[int | None], budget: int) -> dict[str, Any]:
    """KM median of event times (None: censored at the budget) with its bootstrap CI."""
    recs = [
        {"steps_to_target": t, "reached": t is not None, "steps": budget, "final_train_error": 0}
        for t in times
    ]
    return km(recs)


def analyse_b(pairs: list[tuple[dict, dict]], p: dict[str, Any], sp: dict[str, Any]) -> dict:
    """Part B: (record, curves) of the measurement runs and the protocol's summary -> per
    activation the tuned lr and its bracket, KM median steps to the target, and for the top
    hidden layer per seed the drop and escape steps (``escape``) with the KM median escape
    step; per-layer activations over training (median over seeds with a bootstrap CI)."""
    cells: dict[str, Any] = {}
    records = [r for r, _ in pairs]
    budget = sp["steps"]
    for row in p["settings"]:
        act = row["activation"]
        rs = [(r, c) for r, c in pairs if r["activation"] == act]
        rs.sort(key=lambda rc: rc[0]["seed"])
        esc = [escape(c["diag_steps"], np.asarray(c["diag_act_mean"])[:, -1]) for _, c in rs]
        dropped = [e for e in esc if e["dropped"] is not None]
        stt = [r.get("steps_to_target") for r, _ in rs]
        # learned while saturated: reached the target before the top layer escaped
        while_sat = [
            t is not None
            and e["dropped"] is not None
            and (e["escaped"] is None or t < e["escaped"])
            for t, e in zip(stt, esc, strict=True)
        ]
        c: dict[str, Any] = {
            "activation": act,
            "lr": row["lr"],
            "bracket_closed": row["bracket"]["closed"],
            "open_side": row["bracket"]["open_side"],
            "tuning": [
                {
                    "lr": g["lr"],
                    "median_steps": g["median_steps"],
                    "failed": g["diverged"] + g["collapsed"],
                }
                for g in row["tuning"]
            ],
            **km(select(records, activation=act)),
            "seeds": [r["seed"] for r, _ in rs],
            "final_train_error": [r.get("final_train_error") for r, _ in rs],
            "top_line": [e["line"] for e in esc],
            "top_min": [e["min"] for e in esc],
            "top_dropped_step": [e["dropped"] for e in esc],
            "top_escape_step": [e["escaped"] for e in esc],
            "n_dropped": len(dropped),
            "dropped_ci": proportion_ci(len(dropped), len(esc)),
            "n_escaped": sum(e["escaped"] is not None for e in dropped),
            "escaped_ci": proportion_ci(
                sum(e["escaped"] is not None for e in dropped), len(dropped)
            ),
            # among runs that dropped; no escape = censored at the budget
            "escape": _km_events([e["escaped"] for e in dropped], budget),
            "learned_while_saturated": int(sum(while_sat)),
            "learned_while_saturated_ci": proportion_ci(int(sum(while_sat)), len(esc)),
        }
        ok = [(r, x) for r, x in rs if not r.get("diverged")]
        if ok:
            mean = np.stack([x["diag_act_mean"] for _, x in ok])  # (S, D, L)
            c.update(
                {
                    "act_mean_init": np.median(mean[:, 0], 0).tolist(),
                    "act_mean_final": np.median(mean[:, -1], 0).tolist(),
                    "act_mean_min_over_training": np.median(mean.min(1), 0).tolist(),
                    "_steps": ok[0][1]["diag_steps"],
                    "_mean": mean,
                    "_err": np.stack([x["eval_error"] for _, x in ok]),
                    "_err_steps": ok[0][1]["eval_steps"],
                }
            )
        cells[act] = c
    return {"cells": cells, "protocol": protocol_block(p)}


def _band(ys: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Median over seeds (axis 0) and its percentile-bootstrap 95% CI, per remaining entry."""
    idx = np.random.default_rng(seed).integers(0, ys.shape[0], (n_boot, ys.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        boot = np.nanmedian(ys[idx], axis=1)
        lo, hi = np.nanpercentile(boot, [2.5, 97.5], axis=0)
        return np.nanmedian(ys, 0), lo, hi


def _plot_b(ctx: Context, b: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in b["cells"].values() if "_mean" in c]
    fig, axes = plt.subplots(
        len(cells), 3, figsize=(14, 3.8 * len(cells)), layout="constrained", squeeze=False
    )
    for i, c in enumerate(cells):
        steps, mean = c["_steps"], c["_mean"]
        ax_l, ax_t, ax_e = axes[i]
        for layer in range(mean.shape[2]):
            med, lo, hi = _band(mean[:, :, layer])
            (ln,) = ax_l.plot(steps, med, lw=1.5, label=f"layer {layer + 1}")
            ax_l.fill_between(steps, lo, hi, color=ln.get_color(), alpha=0.2, lw=0)
        ax_l.set(
            yscale="log",
            xlabel="SGD step",
            ylabel="mean activation of the layer",
            title=f"{c['activation']}, lr {c['lr']:g}: median over seeds, 95% CI",
        )
        ax_l.legend(fontsize=7)
        for j in range(mean.shape[0]):
            (ln,) = ax_t.plot(steps, mean[j, :, -1], lw=1, alpha=0.8)
            e = c["top_escape_step"][j] if j < len(c["top_escape_step"]) else None
            if e is not None:
                ax_t.axvline(e, color=ln.get_color(), ls=":", lw=1)
        line = float(np.median(c["top_line"]))
        ax_t.axhline(line, color="k", ls="--", lw=1, label=f"saturation line {line:.3g}")
        ax_t.set(
            yscale="log",
            xlabel="SGD step",
            ylabel="top hidden layer mean activation",
            title="each seed; dotted: its escape step",
        )
        ax_t.legend(fontsize=7)
        med, lo, hi = _band(c["_err"])
        ax_e.plot(c["_err_steps"], med, "k", lw=1.5)
        ax_e.fill_between(c["_err_steps"], lo, hi, color="k", alpha=0.15, lw=0)
        ax_e.set(
            ylim=(0, 1),
            xlabel="SGD step",
            ylabel="training error (evaluation subset)",
            title="median over seeds, 95% CI",
        )
    fig.suptitle("Standard init, 4 hidden layers, Fashion-MNIST: activations during training")
    return save_figure(ctx, fig, "saturation_training.png")


# --------------------------------------------------------------------------- the claim

CLAIM = """
Glorot & Bengio 2010 (Understanding the difficulty of training deep feedforward neural
networks), as recorded in REFERENCES.md: with the "standard" init W ~ U[-1/sqrt(n), 1/sqrt(n)]
(n Var W = 1/3) the variance of the back-propagated gradients decreases from the top layer
downwards at initialisation; the normalised init Var W = 2 / (n_in + n_out) keeps it roughly
constant. Setup: fully connected nets of 1-5 hidden layers of 1000 units, sigmoid / tanh /
softsign. With sigmoid (Fig. 2, 4 hidden layers) the top hidden layer's activations are pushed
to their lower saturation value 0 very early in training and leave it only much later, when
the net starts to learn ("the saturation regime may be escaped" with 4 hidden layers; a depth-5
net never escapes). Published test errors, 5 hidden layers, CIFAR-10: sigmoid 57.28%, tanh
55.9%, tanh + normalised init 52.92% (not reproduced here).
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


def _escape_status(b: dict[str, Any]) -> tuple[str, int]:
    """Part B2: held when the sigmoid net learns at a bracketed lr (KM median steps to target
    reached) and the CI of the share of dropped runs whose top layer escaped lies above 1/2;
    not held when most runs reached the target while the top layer was still saturated (CI of
    that share above 1/2); inconclusive otherwise (a net that never learns, an open bracket, or
    no escape within the budget: censored, not evidence against)."""
    if side(b.get("learned_while_saturated_ci"), 0.5) == 1:
        return "not held", -1
    learns = b.get("median") is not None and b.get("bracket_closed")
    if learns and side(b.get("escaped_ci"), 0.5) == 1:
        return "held", 1
    return "inconclusive", 0


def _parts(s: dict[str, Any]) -> list[tuple[str, int]]:
    """(status, sign) of the four parts, in ``verdict``'s order."""
    cells = s["part_a"]["cells"]
    std = [side(c["bottom_top_ci95"], 1.0) for c in cells.values() if c["init"] == "standard"]
    a1 = -1 if std and all(x == -1 for x in std) else 1 if any(x == 1 for x in std) else 0
    a2 = _within_2(cells["tanh/xavier_uniform"]["bottom_top_ci95"])
    b = s["part_b"]["sigmoid"]
    b1 = side(b["dropped_ci"], 0.5) if b["n"] else 0
    return [(status(a1, -1), a1), (status(a2, -1), a2), (status(b1, 1), b1), _escape_status(b)]


def verdict(s: dict[str, Any]) -> tuple[str, str]:
    """Four parts. A (standard init): held when the 95% CI of layer 1 / layer 5 of the
    back-propagated gradient lies below 1 for every activation, not held when one lies above 1.
    A (normalised init): held when tanh's CI lies inside [1/2, 2], not held when wholly outside.
    B1: held when the Clopper-Pearson CI of the share of sigmoid measurement runs whose top
    hidden layer's mean activation fell below the saturation line lies above 1/2, not held when
    below. B2 (escape): ``_escape_status``. The claim holds when every part holds, fails when
    any part fails."""
    parts = _parts(s)
    (st1, _), (st2, _), (st3, _), (st4, _) = parts
    cells = s["part_a"]["cells"]
    t_std, t_norm = cells["tanh/standard"], cells["tanh/xavier_uniform"]
    b = s["part_b"]["sigmoid"]
    std = "; ".join(
        f"{c['activation']} {_f(c['bottom_top_median'])} {_ci(c['bottom_top_ci95'])} "
        f"(theory {_f(c['bottom_top_theory'])})"
        for c in cells.values()
        if c["init"] == "standard"
    )
    esc = b["escape"]
    text = (
        f"Part A, standard init, layer 1 / layer 5 of the back-propagated gradient: {std} -> "
        f"{st1}. Normalised init, tanh: {_f(t_norm['bottom_top_median'])} "
        f"{_ci(t_norm['bottom_top_ci95'])} (theory {_f(t_norm['bottom_top_theory'])}; claim: "
        f"within a factor 2) -> {st2}. The RMS weight gradient of layer 1 over layer 5 with the "
        f"standard init (tanh) was {_f(t_std['weight_grad_rms_bottom_top_median'])} "
        f"{_ci(t_std['weight_grad_rms_bottom_top_ci95'])} (the paper's Eq. 14: about 1). "
        f"Part B1: the sigmoid net's top hidden layer was driven below {SAT_FRACTION:g} x its "
        f"initial mean activation in {b['n_dropped']}/{b['n']} measurement runs (95% CI of the "
        f"share {_ci(b['dropped_ci'], 2)}; claim: most runs) -> {st3}. Part B2: at the tuned lr "
        f"{b['lr']:g} (bracket {'closed' if b['bracket_closed'] else 'OPEN'}; KM median steps "
        f"to {s['part_b']['target']:g} error {fmt_km(b, s['part_b']['steps'])}) it escaped in "
        f"{b['n_escaped']}/{b['n_dropped']} of those runs (CI {_ci(b['escaped_ci'], 2)}), KM "
        f"median escape step {fmt_km(esc, s['part_b']['steps'])}; {b['learned_while_saturated']}"
        f"/{b['n']} runs reached the target while still saturated -> {st4}."
    )
    return combine([x[0] for x in parts]), text


def answer(s: dict[str, Any], st: str) -> str:
    """The report's opening paragraph, from the summary."""
    a, b, pb = s["part_a"]["cells"], s["part_b"]["sigmoid"], s["part_b"]
    std_in = s["part_a"]["standardised"]
    t_norm_std = std_in["cells"]["tanh/xavier_uniform"]
    t_std, t_norm = a["tanh/standard"], a["tanh/xavier_uniform"]
    budget = pb["steps"]
    ci = t_norm["bottom_top_ci95"]
    # how close the normalised init's CI comes to the claim's factor-2 edge
    edge = (
        f", at the edge of the factor 2 the claim allows (95% CI {_ci(ci)})"
        if ci and min(abs(ci[0] - 0.5), abs(ci[1] - 0.5)) < 0.05
        else f" (95% CI {_ci(ci)})"
    )
    drops = [x for x in b["top_dropped_step"] if x is not None]
    esc = b["escape"]["median"]
    per_epoch = pb["batch_size"] / pb["n_train"]
    final = b.get("act_mean_final") or [math.nan]
    when = (
        f" (~{esc * per_epoch:.2f} epochs of {pb['n_train']} images; diagnostics every "
        f"{pb['diag_every']} steps)"
        if esc is not None
        else ""
    )
    return (
        f"**{st.capitalize()}.** At init, with {s['part_a']['n_in']} inputs on the [0, 1] pixel "
        f"scale, the standard init shrinks tanh's back-propagated gradient from layer 5 to layer "
        f"1 to {_f(t_std['bottom_top_median'])} of its value (theory "
        f"{_f(t_std['bottom_top_theory'])}); the normalised init keeps "
        f"{_f(t_norm['bottom_top_median'])} (theory {_f(t_norm['bottom_top_theory'])}){edge}; "
        f"on the standardised images part B trains on (E[x^2] = {std_in['x_sq']:.2f} instead of "
        f"{s['part_a']['x_sq']:.2f}) it keeps only {_f(t_norm_std['bottom_top_median'])} "
        f"{_ci(t_norm_std['bottom_top_ci95'])} (theory {_f(t_norm_std['bottom_top_theory'])}): "
        "the normalised first layer then puts tanh outside its linear regime, so 'roughly "
        "constant' depends on the input scale. "
        f"In training (sigmoid, 4 hidden layers, tuned lr {b['lr']:g}, bracket "
        f"{'closed' if b['bracket_closed'] else 'OPEN'}, {b['n']} seeds) the top hidden layer "
        f"was driven towards 0 in {b['n_dropped']}/{b['n']} runs (by step "
        f"{_f(float(max(drops)) if drops else math.nan)}, lowest mean "
        f"{_f(float(np.median(b['top_min'])) if b['top_min'] else math.nan)}) and escaped in "
        f"{b['n_escaped']}/{b['n_dropped']} of them, at a KM median step of "
        f"{fmt_km(b['escape'], budget)}{when}, settling at a mean activation of "
        f"{_f(final[-1], 2)} (init 0.5), before the net reached {pb['target']:g} training "
        f"error at a KM median step of {fmt_km(b, budget)}. The saturated phase is short here; "
        "the paper's lasted far longer (see the claim)."
    )


def run(ctx: Context) -> dict[str, Any]:
    from bench import data

    sa, sb = spec_a(ctx.size), spec_b(ctx.size)
    ds = data.load(sa["dataset"], data_dir=ctx.data_dir, **sa["data"])
    a = part_a(sa, ds)
    fig_a = _plot_a(ctx, a, sa["depth"])
    t = tuned_sweep(ctx, sb)
    b = analyse_b(measured_curves(t), t.protocol, sb)
    fig_b = _plot_b(ctx, b)
    slim_stages(
        t,
        keep=(*SLIM_KEEP, "diag_steps", "diag_act_mean", "diag_saturation_fraction"),
    )
    s = summarise(a, b, sa, sb, len(ds.x_train))
    s["part_b"]["run_dir"] = str(t.root)
    return report(ctx, sa, sb, s, [fig_a, fig_b])


def summarise(
    a: dict[str, Any], b: dict[str, Any], sa: dict[str, Any], sb: dict[str, Any], n_train: int
) -> dict[str, Any]:
    """Part A's cells and part B's analysis -> the claim's summary (JSON-safe)."""
    cells_b = {
        k: {kk: vv for kk, vv in c.items() if not kk.startswith("_")} for k, c in b["cells"].items()
    }
    return {
        "part_a": a,
        "part_b": {
            "cells": cells_b,
            "sigmoid": cells_b["sigmoid"],
            "steps": sb["steps"],
            "target": sb["target"],
            "batch_size": sb["batch_size"],
            "diag_every": sb["diag_every"],
            "n_train": n_train,
            "sat_fraction": SAT_FRACTION,
        },
        "protocol": {
            "part_a": grid_block(
                list(range(sa["seeds"])),
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
    rows_a = []
    for name, v in (("[0, 1] pixels", a), ("standardised", a["standardised"])):
        for act in acts_a:
            for init in INITS:
                c = v["cells"][f"{act}/{init}"]
                att = ", ".join(f"{x:.2f}" for x in c["attenuation_gmean"])
                att_t = ", ".join(f"{x:.2f}" for x in c["attenuation_theory"])
                sq = c["sigma_sq_first_hidden"]
                rows_a.append(
                    [
                        name,
                        act,
                        init,
                        f"{sq[0]:.3g}, {sq[1]:.3g}",
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
            "inputs",
            "activation",
            "init",
            "sigma_w^2 (first, hidden)",
            "grad_sq layer 1 / layer 5, median [95% CI]",
            "theory",
            "attenuation l=1..4 (gmean over seeds)",
            "theory chi(q_l)",
            "RMS weight grad layer 1 / layer 5",
        ],
        rows_a,
    )
    budget = sb["steps"]
    rows_b, rows_seed = [], []
    for c in s["part_b"]["cells"].values():
        rows_b.append(
            [
                c["activation"],
                f"{c['lr']:g}"
                + ("" if c["bracket_closed"] else " (OPEN " + "/".join(c["open_side"]) + ")"),
                c["n"],
                fmt_km(c, budget),
                f"{c['n_dropped']}/{c['n']} {_ci(c['dropped_ci'], 2)}",
                f"{c['n_escaped']}/{c['n_dropped']} {_ci(c['escaped_ci'], 2)}",
                fmt_km(c["escape"], budget),
                f"{c['learned_while_saturated']}/{c['n']}",
                ", ".join(f"{x:.3f}" for x in c.get("act_mean_init", [])),
                ", ".join(f"{x:.3f}" for x in c.get("act_mean_min_over_training", [])),
                ", ".join(f"{x:.3f}" for x in c.get("act_mean_final", [])),
            ]
        )
        for i, seed in enumerate(c["seeds"]):
            fe = c["final_train_error"][i]
            rows_seed.append(
                [
                    c["activation"],
                    seed,
                    f"{c['top_min'][i]:.4f}",
                    c["top_dropped_step"][i] if c["top_dropped_step"][i] is not None else "never",
                    c["top_escape_step"][i]
                    if c["top_escape_step"][i] is not None
                    else f">{budget}",
                    "-" if fe is None else f"{fe:.3f}",
                ]
            )
    table_b = md_table(
        [
            "activation",
            "tuned lr",
            "runs",
            f"KM median steps to {sb['target']:g} [95% CI]",
            "top layer driven to 0 [CI of share]",
            "escaped (of those) [CI]",
            "KM median escape step [95% CI]",
            "reached target while saturated",
            "act mean per layer at init (1..4)",
            "lowest during training",
            "final",
        ],
        rows_b,
    )
    table_seed = md_table(
        [
            "activation",
            "seed",
            "top layer min mean",
            "first step below line",
            "escape step",
            "final training error",
        ],
        rows_seed,
    )
    tuning = "; ".join(
        c["activation"]
        + ": "
        + ", ".join(
            f"lr {g['lr']:g} -> "
            + ("not reached" if g["median_steps"] is None else f"{g['median_steps']:.0f}")
            + (f" ({g['failed']} failed)" if g["failed"] else "")
            for g in c["tuning"]
        )
        for c in s["part_b"]["cells"].values()
    )
    s_norm = sigma_sq("xavier_uniform", a["n_in"], width_a)
    s_40 = sigma_sq("xavier_uniform", 40, width_a)
    setup = f"""
Part A (init): `bench.diagnostics.at_init`, MLP {a["n_in"]} -> {width_a} x {depth_a} -> 10 on
Fashion-MNIST, the first {a["examples"]} training images, twice: on the unstandardised [0, 1]
pixel scale (E[x^2] = {a["x_sq"]:.3f}; the verdict reads these) and standardised as the harness
feeds them to part B (E[x^2] = {a["standardised"]["x_sq"]:.3f}: the first layer's q_1 =
sigma_1^2 E[x^2] is then outside tanh's linear regime under the normalised init); zero biases,
{seeds_a} seeds (the statistical unit; no training, no lr), inits "standard"
(U[+-1/sqrt(fan_in)]) and "xavier_uniform" (normalised: with {a["n_in"]} inputs and {width_a}
units its first layer has fan_in Var W = {s_norm:.3g}, the paper's setting, against {s_40:.3g}
with MNIST-1D's 40 inputs). grad_sq = mean over examples and units of (d loss_b / d h_l)^2;
ratio bottom/top per seed = grad_sq(layer 1) / grad_sq(layer 5), its median over seeds with a
percentile-bootstrap 95% CI. Theory: mean-field q_l and chi(q_l) from `activations.theory`
(length_map, chi) with each layer's sigma_w^2 = fan_in Var W. softsign is the registered
`soft_sign`.

Part B (training): 4-hidden-layer sigmoid MLPs ({sb["width"]} units; the paper: 1000) on
Fashion-MNIST ({sb["data"]["limit_train"] or 60000} training images), standard init, zero biases,
plain SGD, batch {sb["batch_size"]}, {budget} steps, target {sb["target"]:g} training error (on the
first {sb["eval_size"]} training images every {sb["eval_every"]} steps); `diagnostics = true` every
{sb["diag_every"]} steps on the first {sb["diag_size"]} training images: act_mean (mean of phi(h_l)
over examples and units) per layer. **Saturation and escape** (defined here, from act_mean):
the top hidden layer is *driven to 0* at the first diagnostic step at which its mean activation
is below {SAT_FRACTION:g} x its value at step 0 (0.5 for sigmoid at zero bias, so about 0.05:
most units near their lower saturation value, where sigmoid' ~ sigmoid ~ 0 blocks the gradient
to the layers below), and *escapes* at the first later diagnostic step at which it is back at
or above that line. Runs that never escape are censored at the budget (Kaplan-Meier over the
runs that were driven to 0); runs that diverge never escape. Tuning: {tuning}.

{protocol_md(s["protocol"]["part_b"])}

Command: `{ctx.command}`.
"""
    results_md = (
        "### A. Back-propagated gradients at initialisation\n\n"
        "Published: qualitative (Glorot & Bengio Fig. 7: gradient histograms per layer); "
        "the claim is the trend, decreasing towards the input with the standard init, about "
        "constant with the normalised one.\n\n"
        + table_a
        + "\n\n### B. The sigmoid top layer during training (standard init)\n\n"
        "Published (Fig. 2): sigmoid, 4 hidden layers: the top hidden layer's mean activation "
        "drops to ~0 within the first epochs and stays saturated for a long time, then moves "
        "out of saturation (around epoch 100 of their run) as learning proceeds.\n\n"
        + table_b
        + "\n\nPer seed:\n\n"
        + table_seed
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
        answer=answer(s, st),
    )

"""Claim 1 (Krizhevsky, Sutskever, Hinton 2012, Fig. 1): ReLU reaches 25% training error six
times faster than tanh in a four-layer CNN.

A miniature of the 2012 setting on images, and a factorial that says what moves the ratio.
The network is cuda-convnet's layers-18pct topology (``architecture = "cifar_18pct"``: conv 5x5
-> max-pool 3/2 -> conv 5x5 -> avg-pool 3/2 -> conv 5x5 -> avg-pool 3/2 -> fc 10, channels
scaled to the budget), momentum SGD, batch 128, no regularisation. Four conditions, each a full
relu-vs-tanh measurement under ``bench.protocol`` (lr tuned per activation and condition on
tuning seeds with a bracketing search, then steps to the target on 8 fresh seeds):

- A "modern": LeCun-normal init, inputs standardised per channel;
- B "2012": cuda-convnet's init (Gaussian, std 1e-4 in the first layer, 1e-2 elsewhere, zero
  biases) and its inputs (0-255 pixels minus the mean training image);
- the two single-factor swaps (the 2012 init with standardised inputs, LeCun init with 0-255
  inputs).

Per condition the ratio tanh/relu of Kaplan-Meier median steps with a paired seed-bootstrap
95% CI; the main effects of init and input scale on the log ratio (and their interaction) with
a bootstrap over the seeds shared by all eight cells; the ratio as a function of the target;
and per-layer diagnostics (saturation, gradient norms) of A and B in a short run at the tuned
learning rates, which say where tanh's time goes.

``spec(size, condition)`` is one condition's sweep, ``analyse`` turns the four into the
summary, ``verdict`` reads it, ``report`` writes REPORT.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bench import stats, summary
from bench.reproduce._common import (
    HELD,
    INCONCLUSIVE,
    NOT_HELD,
    Context,
    Tuned,
    clean,
    dir_size,
    fmt_interval,
    fmt_km,
    fmt_num,
    fmt_outcomes,
    fmt_ratio,
    fmt_steps,
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
    status,
    sweep,
    tuned_sweep,
    write_report,
)

TITLE = "ReLU vs tanh: steps to a training-error target (Krizhevsky et al. 2012, Fig. 1)"

PUBLISHED_RATIO = 6.0  # tanh/relu epochs to 25% training error, CIFAR-10 (read off Fig. 1)

# cuda-convnet layers-18pct.cfg / layer-params-18pct.cfg: initW 0.0001 for conv1, 0.01 for
# conv2, conv3 and fc10; biases 0.
INIT_STD_2012 = [1e-4, 1e-2, 1e-2, 1e-2]

# name -> (label, init factor, input factor); factor levels are "modern" and "2012"
CONDITIONS: dict[str, tuple[str, str, str]] = {
    "A": ("A modern: LeCun-normal init, standardised inputs", "modern", "modern"),
    "B": ("B 2012: Gaussian 1e-4/1e-2 init, 0-255 mean-subtracted inputs", "2012", "2012"),
    "init": ("init swap: 2012 init, standardised inputs", "2012", "modern"),
    "input": ("input swap: LeCun-normal init, 0-255 inputs", "modern", "2012"),
}
DIAG_CONDITIONS = ("A", "B")
# Budget (steps) of the CPU default per condition: >= 8x ReLU's steps to target, so that a
# 6x slower tanh would still be measured. 1000 is 8x-13x ReLU's median in A and B; with
# LeCun init on 0-255 inputs ReLU needs ~300 steps (and its lr ~1e-4), hence 2400 there.
BUDGET = {"A": 1000, "B": 1000, "init": 1000, "input": 2400}
# lr extensions per side: tanh on 0-255 inputs with LeCun init wants lrs ~100x ReLU's, so the
# shared grid needs more room there to close both brackets.
EXTENSIONS = {"A": 3, "B": 3, "init": 3, "input": 5}
ACTS = ("relu", "tanh")

# --------------------------------------------------------------------------- the claim

CLAIM = """
Krizhevsky, Sutskever & Hinton (2012), Figure 1: "A four-layer convolutional neural network
with ReLUs (solid line) reaches a 25% training error rate on CIFAR-10 six times faster than an
equivalent network with tanh neurons (dashed line). The learning rates for each network were
chosen independently to make training as fast as possible. No regularization of any kind was
employed. The magnitude of the effect demonstrated here varies with network architecture."
Published: tanh/relu = **6** (epochs to 25% training error; read off the plot, unverified:
ReLU near epoch 5-6, tanh near epoch 35). No public reproduction reporting the ratio is known.
The network was most likely cuda-convnet's layers-18pct (three 5x5 conv layers with 32, 32, 64
filters, max-pool then two average pools, 3/2, response normalisation, fc 10), trained with
momentum 0.9, batch 128, from a Gaussian init of std 1e-4 (first layer) and 1e-2 (others), on
mean-subtracted 0-255 pixels.
"""


def _dataset(size: str, data_dir: str | None) -> str:
    return "cifar10" if size == "full" and data_dir else "fashion-mnist"


def spec(size: str, condition: str = "B", data_dir: str | None = None) -> dict[str, Any]:
    """One condition's sweep: relu and tanh, lr tuned per activation, 8 measurement seeds."""
    _, init, inputs = CONDITIONS[condition]
    data: dict[str, Any] = pick(
        size, tiny={"limit_train": 512, "limit_test": 128}, default={}, full={}
    )
    if inputs == "2012":
        data = {**data, "preprocess": "mean_subtract"}
    modern_lrs = [0.1, 0.03, 0.01]
    # 0-255 inputs (std ~ 90 instead of 1) make the first layer's gradient ~ 90x larger
    raw_lrs = [1e-3, 3e-4, 1e-4]
    sp: dict[str, Any] = {
        "experiment": f"relu_vs_tanh_{condition}",
        "description": f"Krizhevsky et al. 2012 Fig. 1, condition {CONDITIONS[condition][0]}",
        "dataset": _dataset(size, data_dir),
        "data": data,
        "model": "cnn",
        "architecture": "cifar_18pct",
        "activation": list(ACTS),
        "channels": pick(size, tiny=[4, 4, 8], default=[8, 8, 16], full=[32, 32, 64]),
        "pool": 3,
        "optimizer": "momentum",
        "momentum": 0.9,
        "batch_size": pick(size, tiny=32, default=128, full=128),
        "steps": pick(size, tiny=40, default=BUDGET[condition], full=4 * BUDGET[condition]),
        "eval_every": pick(size, tiny=10, default=10, full=20),
        "eval_size": pick(size, tiny=128, default=1024, full=5000),
        "target": pick(size, tiny=0.8, default=0.25, full=0.25),
        "lr": pick(
            size,
            tiny=[0.01] if inputs == "modern" else [1e-4],
            default=modern_lrs if inputs == "modern" else raw_lrs,
            full=modern_lrs if inputs == "modern" else raw_lrs,
        ),
        "protocol": "tuned",
        "tuning_seeds": pick(size, tiny=[1000], default=[1000, 1001], full=[1000, 1001]),
        "lr_extensions": pick(
            size, tiny=0, default=EXTENSIONS[condition], full=EXTENSIONS[condition]
        ),
        "seed": pick(size, tiny=[0, 1], default=list(range(8)), full=list(range(8))),
        "early_exit": 2,  # only steps to target is measured
        "strategy": "auto",
    }
    if init == "2012":
        sp |= {"init": "gaussian", "init_std": INIT_STD_2012}
    else:
        sp["init"] = "lecun_normal"
    return sp


def diag_spec(
    size: str, condition: str, act: str, lr: float, data_dir: str | None = None
) -> dict[str, Any]:
    """Per-layer diagnostics of one condition and activation at its tuned lr: three
    measurement seeds, a fixed number of steps (no early exit)."""
    sp = spec(size, condition, data_dir)
    steps = pick(size, tiny=40, default=300, full=1000)
    every = sp["eval_every"]
    return {
        **{k: v for k, v in sp.items() if k not in ("protocol", "tuning_seeds", "lr_extensions")},
        "experiment": f"relu_vs_tanh_diag_{condition}",
        "activation": act,
        "lr": lr,
        "seed": sp["seed"][:3],
        "steps": steps,
        "early_exit": 0,
        "diagnostics": True,
        "diag_every": every * pick(size, tiny=1, default=3, full=5),
        "diag_size": 512,
    }


# --------------------------------------------------------------------------- analysis (pure)


def _act_block(t: Tuned, act: str) -> dict[str, Any]:
    row = next(x for x in t.protocol["settings"] if x["activation"] == act)
    return {
        "lr": row["lr"],
        "bracket": row["bracket"],
        "tuning": row["tuning"],
        **km(select(t.measured, activation=act)),
    }


def at_target(
    pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, np.ndarray]]], target: float
) -> list[dict[str, Any]]:
    """Each measurement run's record as if ``target`` were its target: steps to the first
    evaluation at or below it (from the run's evaluation curve); a run that never got there
    is censored (or stays a failure)."""
    out = []
    for rec, curves in pairs:
        r = dict(rec)
        err, steps = curves.get("eval_error"), curves.get("eval_steps")
        hit = None
        if err is not None and not r.get("diverged"):
            # evaluations after training began (at step 0 nothing has been learned yet)
            below = np.flatnonzero((np.asarray(err) <= target) & (np.asarray(steps) > 0))
            hit = int(np.asarray(steps)[below[0]]) if below.size else None
        r["steps_to_target"], r["reached"] = hit, hit is not None
        out.append(r)
    return out


def ratio_curve(
    pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, np.ndarray]]],
    targets: Sequence[float],
) -> list[dict[str, Any]]:
    """tanh/relu (paired, with CI) and both KM medians at each target."""
    rows = []
    for tg in targets:
        recs = at_target(pairs, tg)
        tanh, relu = select(recs, activation="tanh"), select(recs, activation="relu")
        rows.append(
            {
                "target": tg,
                "ratio": ratio(tanh, relu),
                "relu_median": km(relu)["median"],
                "tanh_median": km(tanh)["median"],
            }
        )
    return rows


# Each effect as coefficients on the four cells' log ratios (the 2x2 contrasts).
EFFECTS = {
    "init": {"init": 0.5, "B": 0.5, "A": -0.5, "input": -0.5},
    "input": {"input": 0.5, "B": 0.5, "A": -0.5, "init": -0.5},
    "interaction": {"B": 0.5, "A": 0.5, "input": -0.5, "init": -0.5},
}


def factor_effects(
    cells: Mapping[str, Mapping[str, stats.Sample]], n_boot: int = 4000, seed: int = 0
) -> dict[str, Any]:
    """Main effects of init and input scale, and their interaction, on log(tanh/relu) in the
    2x2 design {A, init, input, B}, with a percentile bootstrap over the measurement seeds
    (one resample of seed indices for all eight cells, so correlations between cells that
    share a seed are kept). Effects are reported as ratio factors exp(effect).

    init effect = mean over input levels of [log r(2012 init) - log r(modern init)];
    input effect likewise; interaction = half the difference of the two init effects.

    A median that is not reached (in the data or in a resample) is replaced by its censoring
    time, the budget, so that cell's log ratio becomes a bound: an upper bound when relu's
    median is missing (relu is at least that slow), a lower bound when tanh's is, unknown when
    both are. An effect is then a bound too ("lower": the true factor is at least the value,
    "upper": at most) when every substituted cell pushes it the same way, and undetermined
    (None) when they disagree. ``censored_resamples`` is the share of resamples with any
    substitution."""
    need = ("A", "B", "init", "input")
    if not all(c in cells for c in need):
        return {}
    seeds = cells["A"]["relu"].seeds
    order = {c: {a: _aligned(cells[c][a], seeds) for a in ACTS} for c in need}
    n = len(seeds)

    def log_ratios(idx: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per cell (resamples,) log ratios and bound directions (+1 lower, -1 upper, 0
        exact, NaN both medians missing)."""
        out, way = {}, {}
        for c in need:
            meds, missing = {}, {}
            for a in ACTS:
                t, e = order[c][a]
                m = stats.km_median_batch(t[idx], e[idx])
                missing[a] = ~np.isfinite(m)
                meds[a] = np.where(missing[a], t.max(), m)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[c] = np.log(meds["tanh"]) - np.log(meds["relu"])
            d = missing["tanh"].astype(float) - missing["relu"].astype(float)
            way[c] = np.where(missing["tanh"] & missing["relu"], np.nan, d)
        return out, way

    def effects(lr, way) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """effect -> (values, direction: +1 lower bound, -1 upper, 0 exact, NaN unknown)."""
        res = {}
        for k, coef in EFFECTS.items():
            v = sum(w * lr[c] for c, w in coef.items())
            pushes = np.stack([np.sign(w) * way[c] for c, w in coef.items()])  # (4, R)
            up, down = np.any(pushes > 0, 0), np.any(pushes < 0, 0)
            d = np.where(up & ~down, 1.0, np.where(down & ~up, -1.0, 0.0))
            d = np.where((up & down) | np.any(np.isnan(pushes), 0), np.nan, d)
            res[k] = (np.asarray(v, float), d)
        return res

    point = effects(*log_ratios(np.arange(n)[None, :]))
    rng = np.random.default_rng(seed)
    boot = effects(*log_ratios(rng.integers(0, n, (n_boot, n))))
    out: dict[str, Any] = {"n_boot": n_boot, "n_seeds": n, "method": "percentile"}
    for k, (pv, pd) in point.items():
        bv, bd = boot[k]
        dirs = {float(x) for x in np.concatenate([pd, bd]) if not np.isnan(x) and x != 0}
        known = not np.isnan(pd[0]) and not np.isnan(bd).any() and len(dirs) <= 1
        bound = (
            "undetermined"
            if not known
            else {1.0: "lower", -1.0: "upper"}[dirs.pop()]
            if dirs
            else "exact"
        )
        v = float(pv[0])
        ok = known and math.isfinite(v) and np.isfinite(bv).all()
        lo_hi = np.percentile(bv, [2.5, 97.5]) if ok else [math.nan, math.nan]
        out[k] = {
            "factor": float(np.exp(v)) if ok else None,
            "ci": [float(np.exp(x)) for x in lo_hi] if ok else [None, None],
            "bound": bound,
            "censored_resamples": float(np.mean(bd != 0)),
        }
    return out


def _aligned(s: stats.Sample, seeds: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    at = {sd: i for i, sd in enumerate(s.seeds)}
    idx = np.array([at[sd] for sd in seeds])
    return s.time[idx], s.event[idx]


def diag_summary(records: Sequence[Mapping[str, Any]], curves: Mapping[str, Any]) -> dict:
    """Per (activation): per-layer saturation fraction and weight-gradient norm at step 0 and
    at the last diagnostics step, medians over seeds."""
    out: dict[str, Any] = {}
    for act in sorted({r["activation"] for r in records}):
        ids = [r["config_id"] for r in records if r["activation"] == act]
        block: dict[str, Any] = {"n_seeds": len(ids)}
        for metric in ("saturation_fraction", "grad_norm_w", "q"):
            key = f"diag_{metric}"
            arrs = [np.asarray(curves[i][key], np.float64) for i in ids if key in curves.get(i, {})]
            if not arrs:
                continue
            a = np.stack(arrs)  # (seeds, diag steps, layers)
            with np.errstate(invalid="ignore"):
                block[metric] = {
                    "init": np.nanmedian(a[:, 0], 0).tolist(),
                    "end": np.nanmedian(a[:, -1], 0).tolist(),
                    "max": np.nanmedian(np.nanmax(a, 1), 0).tolist(),
                }
        steps = next(
            (curves[i]["diag_steps"] for i in ids if "diag_steps" in curves.get(i, {})), None
        )
        block["diag_steps"] = None if steps is None else np.asarray(steps).tolist()
        out[act] = block
    return out


def analyse(
    tuned: Mapping[str, Tuned],
    sps: Mapping[str, dict[str, Any]],
    pairs: Mapping[str, list],
    diags: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The four conditions' tuned sweeps -> the claim's summary."""
    conditions = []
    cells: dict[str, dict[str, stats.Sample]] = {}
    for c, t in tuned.items():
        sp = sps[c]
        label, init, inputs = CONDITIONS[c]
        meas = t.measured
        acts = {a: _act_block(t, a) for a in ACTS}
        cells[c] = {a: stats.sample(select(meas, activation=a)) for a in ACTS}
        target = sp["target"]
        # 0.5 down to the target (the runs stop soon after it, so nothing below is measured)
        targets = [round(x, 3) for x in np.arange(max(0.5, target), target - 1e-9, -0.025)]
        conditions.append(
            {
                "name": c,
                "label": label,
                "init": init,
                "inputs": inputs,
                "init_spec": sp.get("init_std") if sp["init"] == "gaussian" else sp["init"],
                "preprocess": sp["data"].get("preprocess", "standardise"),
                "steps": sp["steps"],
                "activations": acts,
                "ratio_tanh_over_relu": ratio(
                    select(meas, activation="tanh"), select(meas, activation="relu")
                ),
                "ratio_vs_target": ratio_curve(pairs[c], targets),
                "protocol": protocol_block(t.protocol),
            }
        )
    some = sps[next(iter(sps))]
    headline = next((x for x in conditions if x["name"] == "B"), conditions[0])
    out = {
        "dataset": some["dataset"],
        "channels": some["channels"],
        "target": some["target"],
        "steps": some["steps"],
        "eval_size": some["eval_size"],
        "published_ratio": PUBLISHED_RATIO,
        "headline_condition": headline["name"],
        # the faithful miniature's numbers at the top level (what the verdict reads)
        "ratio_tanh_over_relu": headline["ratio_tanh_over_relu"],
        "activations": headline["activations"],
        "conditions": conditions,
        "factor_effects": factor_effects(cells),
        "protocol": headline["protocol"],
    }
    if diags:
        out["diagnostics"] = diags
        out["diagnostics_reading"] = diag_reading(diags)[0]
    return out


def verdict(s: dict[str, Any]) -> tuple[str, str]:
    """Held when the 95% CI of tanh/relu in the faithful miniature (condition B) lies above 1
    (ReLU faster), not held when below 1, inconclusive when it includes 1; the magnitude is
    compared with the published 6 in words."""
    r = s["ratio_tanh_over_relu"]
    published = s["published_ratio"]
    if r["ratio"] is None:
        return INCONCLUSIVE, (
            "The ratio could not be determined: neither activation reached the target on most "
            "measurement seeds."
        )
    sign = side(r["ci"], 1.0, r["ci_bound"])
    st = status(sign, 1)
    head = {
        HELD: "ReLU reached the target faster than tanh: the 95% CI of tanh/relu lies above 1",
        NOT_HELD: "tanh reached the target faster than ReLU: the 95% CI of tanh/relu lies below 1",
        INCONCLUSIVE: "the 95% CI of tanh/relu includes 1, so neither is measurably faster",
    }[st]
    mag = side(r["ci"], published, r["ci_bound"])
    magnitude = {
        -1: f"the whole CI is below the published {published:g}: the gap is smaller here",
        0: f"the CI includes the published {published:g}",
        1: f"the whole CI is above the published {published:g}",
    }[mag]
    text = (
        f"Measured tanh/relu = {fmt_ratio(r)} (paired over {r['n_num']} measurement seeds); "
        f"published {published:g}. {head[0].upper() + head[1:]}; {magnitude}."
    )
    return st, text


# --------------------------------------------------------------------------- figures


def _plot_ratio_vs_target(ctx: Context, s: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.3))
    for c in s["conditions"]:
        rows = [x for x in c["ratio_vs_target"] if x["ratio"]["ratio"] is not None]
        if not rows:
            continue
        tg = np.array([x["target"] for x in rows])
        rr = np.array([x["ratio"]["ratio"] for x in rows])
        ci = [x["ratio"]["ci"] or [None, None] for x in rows]
        lo = np.array([np.nan if a is None else a for a, _ in ci], float)
        hi = np.array([np.nan if b is None else b for _, b in ci], float)
        (line,) = ax.plot(tg, rr, "o-", ms=3, label=c["label"])
        ax.fill_between(tg, lo, hi, color=line.get_color(), alpha=0.15)
    ax.axhline(1, color="k", lw=1)
    ax.axhline(s["published_ratio"], color="k", lw=1, ls=":", label="published 6 (CIFAR-10, 25%)")
    ax.set_yscale("log")
    ax.set_xlabel("training-error target (eval subset)")
    ax.set_ylabel("tanh / relu, KM median steps (95% CI)")
    ax.invert_xaxis()
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title("Where the ratio lives: tanh/relu against the target, per condition", fontsize=9)
    return save_figure(ctx, fig, "ratio_vs_target.png")


def _plot_curves(ctx: Context, s: dict[str, Any], pairs: Mapping[str, list]) -> str:
    import matplotlib.pyplot as plt

    names = [c["name"] for c in s["conditions"]]
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    styles = {"relu": "-", "tanh": "--"}
    for ax, c in zip(axes, s["conditions"], strict=True):
        for act, a in c["activations"].items():
            curves = {
                str(i): cv for i, (r, cv) in enumerate(pairs[c["name"]]) if r["activation"] == act
            }
            mc = median_curve(curves, list(curves), "eval_error")
            if mc is None:
                continue
            steps, med, lo, hi = mc
            (line,) = ax.plot(steps, med, styles[act], lw=2, label=f"{act} (lr {a['lr']:g})")
            ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2)
        ax.axhline(s["target"], color="k", lw=1, ls=":")
        ax.set_title(c["label"], fontsize=7)
        ax.set_xlabel("SGD step")
        ax.set_ylim(0, 0.95)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("training error (eval subset)")
    fig.suptitle(
        "Measurement seeds at the tuned lr (median, band min-max; runs stop soon after the target)",
        fontsize=9,
    )
    return save_figure(ctx, fig, "curves.png")


def _plot_conditions(ctx: Context, s: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    rows = [(c["label"], c["ratio_tanh_over_relu"]) for c in s["conditions"]]
    fe = s.get("factor_effects") or {}
    rows += [(f"effect: {k} (x factor)", v) for k, v in fe.items() if isinstance(v, dict)]
    for y, (_, r) in enumerate(rows):
        v = r.get("ratio", r.get("factor"))
        lo, hi = r.get("ci") or [None, None]
        if v is None:
            continue
        xerr = [
            [v - lo if lo is not None else 0],
            [hi - v if hi is not None else 0],
        ]
        ax.errorbar([v], [y], xerr=xerr, fmt="o", capsize=3)
    ax.axvline(1, color="k", lw=1)
    ax.axvline(s["published_ratio"], color="k", lw=1, ls=":")
    ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=7)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("tanh / relu at the target (95% CI); effects as factors on the ratio")
    ax.grid(alpha=0.3, which="both")
    return save_figure(ctx, fig, "conditions.png")


# --------------------------------------------------------------------------- report


def _bound_mark(bound: str) -> str:
    return {"lower": ">= ", "upper": "<= "}.get(bound, "")


def _answer(s: dict[str, Any]) -> str:
    """The one-paragraph answer, written from the numbers."""
    by = {c["name"]: c for c in s["conditions"]}
    parts = []
    for name in ("B", "A", "init", "input"):
        if name in by:
            parts.append(f"{by[name]['label']}: {fmt_ratio(by[name]['ratio_tanh_over_relu'])}")
    fe = s.get("factor_effects") or {}
    eff = [
        f"{k} x{_bound_mark(v['bound'])}{fmt_num(v['factor'])} {fmt_interval(v['ci'])}"
        if v["factor"] is not None
        else f"{k} undetermined (unreached medians bound it from both sides)"
        for k, v in fe.items()
        if isinstance(v, dict)
    ]
    peak = []
    for c in s["conditions"]:
        rows = [x for x in c["ratio_vs_target"] if x["ratio"]["ratio"] is not None]
        if rows:
            best = max(rows, key=lambda x: x["ratio"]["ratio"])
            peak.append(f"{c['name']} {best['ratio']['ratio']:.2g} at {best['target']:g}")
    _, text = verdict(s)
    caveats = []
    for c in s["conditions"]:
        for a, g in c["activations"].items():
            if not g["bracket"]["closed"]:
                caveats.append(
                    f"{a}'s lr bracket is open {'/'.join(g['bracket']['open_side'])} in "
                    f"{c['name']} (a faster lr may exist)"
                )
            if g["censored"]:
                caveats.append(
                    f"{g['censored']}/{g['n']} {a} runs censored at the budget in {c['name']}"
                )
    return (
        f"**Does ReLU train 6x faster than tanh, and when?** In this miniature "
        f"({s['dataset']}, the 18pct topology at channels {s['channels']}, steps to "
        f"{s['target']:g} training error, lr tuned per activation and condition), tanh/relu "
        f"is: {'; '.join(parts)}. {text} Main effects on the ratio (factor, 95% CI): "
        f"{', '.join(eff) or 'n/a'}. The largest ratio over targets 0.5 down to "
        f"{s['target']:g}: {', '.join(peak) or 'n/a'}. Caveats: {'; '.join(caveats) or 'none'}."
    )


SATURATED_ENOUGH = 0.05  # a layer with >= 5% saturated units counts as saturating
VANISHED = 0.1  # |grad W| at init below 10% of condition A's in a layer counts as vanished


def diag_reading(d: Mapping[str, Any]) -> tuple[str, str]:
    """(cause, sentence): what the tanh diagnostics of B against A say about tanh's time in B.
    "saturation" when some layer of tanh in B had >= 5% saturated units during the run;
    "vanishing gradient at init" when, instead, every layer's weight gradient at init was
    below 10% of A's; "neither" otherwise."""
    try:
        a, b = d["A"]["tanh"], d["B"]["tanh"]
        sat = max(b["saturation_fraction"]["max"])
        ga, gb = a["grad_norm_w"]["init"], b["grad_norm_w"]["init"]
        qa, qb = a["q"]["init"], b["q"]["init"]
    except (KeyError, TypeError, ValueError):
        return "undetermined", "The diagnostics runs are missing."
    rel = [y / x if x else math.nan for x, y in zip(ga, gb, strict=True)]
    facts = (
        f"tanh in B: at most {sat:.1%} of a layer's units saturated during the run; weight "
        f"gradients at init {', '.join(f'{v:.2g}' for v in rel)} of A's (per layer); mean "
        f"squared pre-activation at init {', '.join(f'{v:.2g}' for v in qb)} "
        f"(A: {', '.join(f'{v:.2g}' for v in qa)})."
    )
    if sat >= SATURATED_ENOUGH:
        return "saturation", facts + " Reading: saturation (>= 5% of a layer's units)."
    if all(v < VANISHED for v in rel):
        return "vanishing gradient at init", facts + (
            " Reading: not saturation; the signal and the gradients start vanishingly small "
            "(the fixed-std init), so tanh sits in its linear regime and its early steps are "
            "spent growing the weights."
        )
    return "neither", facts + " Reading: neither saturation nor a vanishing gradient at init."


def _diag_md(s: dict[str, Any]) -> str:
    d = s.get("diagnostics")
    if not d:
        return ""
    rows = []
    for c, block in d.items():
        for act, b in block.items():
            if "saturation_fraction" not in b:
                continue
            sat, g, q = b["saturation_fraction"], b["grad_norm_w"], b.get("q", {})
            rows.append(
                [
                    c,
                    act,
                    ", ".join(f"{x:.2f}" for x in sat["init"]),
                    ", ".join(f"{x:.2f}" for x in sat["max"]),
                    ", ".join(f"{x:.2g}" for x in g["init"]),
                    ", ".join(f"{x:.2g}" for x in g["end"]),
                    ", ".join(f"{x:.2g}" for x in q.get("init", [])),
                ]
            )
    table = md_table(
        [
            "condition",
            "activation",
            "saturated units at init (per layer)",
            "max over the run",
            "|grad W| at init",
            "|grad W| at the end",
            "E[h^2] at init",
        ],
        rows,
    )
    return (
        "Per-layer diagnostics (3 measurement seeds at the tuned lr, medians; saturated: "
        "|phi'(h)| below 1% of its maximum; measured on 512 training examples):\n\n"
        + table
        + "\n\n"
        + diag_reading(d)[1]
    )


def report(
    ctx: Context, sps: Mapping[str, dict[str, Any]], s: dict[str, Any], figs: list[str]
) -> dict[str, Any]:
    """REPORT.md and summary.json from the summary (every number in the text comes from it)."""
    target = s["target"]
    cond_rows, tune_rows = [], []
    for c in s["conditions"]:
        budget = c.get("steps", s["steps"])
        for act, a in c["activations"].items():
            cond_rows.append(
                [
                    c["label"],
                    act,
                    f"{a['lr']:g}" + ("" if a["bracket"]["closed"] else " (bracket open)"),
                    fmt_km(a, budget),
                    fmt_outcomes(a),
                ]
            )
            tune_rows += [
                [
                    c["name"],
                    act,
                    f"{g['lr']:g}",
                    fmt_steps(g["median_steps"], budget),
                    f"{g['reached']}/{sum(g[k] for k in stats.OUTCOMES)}",
                    g["diverged"] + g["collapsed"],
                ]
                for g in a["tuning"]
            ]
    ratio_rows = [[c["label"], fmt_ratio(c["ratio_tanh_over_relu"])] for c in s["conditions"]]
    fe = s.get("factor_effects") or {}
    effect_rows = [
        [
            k,
            _bound_mark(v["bound"]) + fmt_num(v["factor"]),
            fmt_interval(v["ci"]),
            v["bound"],
            f"{v['censored_resamples']:.1%}",
        ]
        for k, v in fe.items()
        if isinstance(v, dict)
    ]
    some = sps[next(iter(sps))]
    cond_table = md_table(
        ["condition", "init", "inputs", "budget (steps)"],
        [
            [c["label"], str(c["init_spec"]), c["preprocess"], c.get("steps", s["steps"])]
            for c in s["conditions"]
        ],
    )
    setup = f"""
Data: {s["dataset"]}, steps to target measured on a fixed subset of the first
{s["eval_size"]} training examples every {some["eval_every"]} steps (binomial standard error of
an error rate near {target:g}: {math.sqrt(target * (1 - target) / s["eval_size"]):.3f}). Model:
cuda-convnet's layers-18pct topology (`architecture = "cifar_18pct"`): conv 5x5 SAME -> max-pool
3/2 -> conv 5x5 -> avg-pool 3/2 -> conv 5x5 -> avg-pool 3/2 -> fc 10, channels {s["channels"]}
(the paper's 32-32-64 scaled to the CPU budget), the activation after every conv, no response
normalisation, no dropout, no weight decay, no augmentation. Momentum SGD ({some["momentum"]}),
batch {some["batch_size"]}, budget per condition below (>= 8x ReLU's steps to target, so a 6x
slower tanh is not censored); a run stops once its error has been at or
below {target:g} for {some["early_exit"]} evaluations (`early_exit`).

Conditions (each a separate tuned sweep; both activations share everything else):

{cond_table}

{protocol_md(s["protocol"])}

(The bracket table above is condition B's; every condition's tuning is listed under Results.)
"""
    results_md = "\n\n".join(
        [
            md_table(["condition", "tanh/relu steps to target [95% CI], paired"], ratio_rows),
            "Factor effects on the ratio (2x2 design, bootstrap over the shared seeds): a "
            "factor of 2 means switching that factor from its modern to its 2012 level doubles "
            "tanh/relu.\n\n"
            + md_table(
                ["effect", "factor", "95% CI", "bound", "resamples with a median not reached"],
                effect_rows,
            ),
            "Measurement seeds, each activation at its tuned lr:\n\n"
            + md_table(
                ["condition", "activation", "tuned lr", "KM median steps [95% CI]", "reached"],
                cond_rows,
            ),
            _diag_md(s),
            "Tuning stage (tuning seeds, every lr tried):\n\n"
            + md_table(
                ["condition", "activation", "lr", "KM median steps", "reached", "failed"],
                tune_rows,
            ),
            summary._LEGEND,
        ]
    )
    st, head = verdict(s)
    verdict_md = f"""
**{st.capitalize()}.** {head}

The verdict reads condition B, the miniature closest to the 2012 setting; the other rows say
which ingredient of that setting moves the ratio. What differs from the paper: {s["dataset"]}
instead of CIFAR-10 (an easier task: the target is reached in fewer steps), channels
{s["channels"]} instead of 32-32-64, no response normalisation, SGD steps instead of epochs.
"""
    data = {**s, "status": st, "results_bytes": dir_size(ctx.out_dir)}
    return write_report(
        ctx,
        title=TITLE,
        claim=CLAIM,
        setup=setup,
        results_md=results_md,
        verdict=verdict_md,
        figures=figs,
        config={c: sp for c, sp in sps.items()},
        data=clean(data),
        answer=_answer(s),
    )


def run(ctx: Context) -> dict[str, Any]:
    sps = {c: spec(ctx.size, c, ctx.data_dir) for c in CONDITIONS}
    tuned = {c: tuned_sweep(ctx, sp) for c, sp in sps.items()}
    pairs = {c: measured_curves(t) for c, t in tuned.items()}
    diags: dict[str, dict[str, Any]] = {}
    for c in DIAG_CONDITIONS:
        diags[c] = {}
        for a in ACTS:
            lr = _act_block(tuned[c], a)["lr"]
            run_dir, _ = sweep(ctx, diag_spec(ctx.size, c, a, lr, ctx.data_dir))
            records, curves = summary.load_run(run_dir)
            diags[c] |= diag_summary(records, curves)
    s = analyse(tuned, sps, pairs, diags)
    s["run_dirs"] = {c: str(t.root) for c, t in tuned.items()}
    figs = [
        _plot_ratio_vs_target(ctx, s),
        _plot_conditions(ctx, s),
        _plot_curves(ctx, s, pairs),
    ]
    for t in tuned.values():
        slim_stages(t)
    return report(ctx, sps, s, figs)

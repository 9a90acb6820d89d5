"""Claim 6 (Klambauer et al. 2017): SELU keeps activations at mean 0, variance 1 over depth.

A wide random MLP at initialisation (bench.models' MLP, LeCun-normal weights, zero biases),
fed N(0, 1) inputs: per hidden layer the mean and variance of ``phi(h_l)`` over examples and
units, for selu, relu and tanh at the same init, several seeds. The forward pass is a
``lax.scan`` over the stacked hidden layers of the model's own parameters (the model's
``apply`` returns only the logits), so the weights are exactly those a sweep would train.

Theory: with ``Var W = 1 / fan_in`` (sigma_w = 1, sigma_b = 0) the first pre-activation of a
unit-variance input has second moment ``q_1 = 1`` and then ``q_{l+1} = L(q_l)``; the predicted
activation mean and variance of layer l are ``E[phi(sqrt(q_l) z)]`` and
``E[phi(sqrt(q_l) z)^2] - E[phi(sqrt(q_l) z)]^2``. selu: ``q* = 1``, so (0, 1) at every layer;
relu: ``q_l`` halves per layer (``q* = 0``); tanh: ``q_l -> 0`` like ``1/l``.

No training and no learning rate: the statistical unit is the seed (a new net and a new input
batch). A seed's deviation is its worst layer's ``max(|mean|, |var - 1|)``; the verdict compares
the 95% CI of the median deviation over seeds (percentile bootstrap) with the 1% tolerance.
"""

from __future__ import annotations

import functools
import math
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import activations
from activations import theory
from bench.reproduce._common import (
    HELD,
    Context,
    clean,
    grid_block,
    pick,
    protocol_md,
    save_figure,
    side,
    status,
    write_report,
)

TITLE = "SELU's self-normalising fixed point over 100 layers (Klambauer et al. 2017)"

ACTIVATIONS = ("selu", "relu", "tanh")
TOLERANCE = 0.01  # the claim: within 1% of (0, 1)


def _static(activation: str, depth: int, width: int, init: str) -> Any:
    from bench import config

    cfg = config.parse(
        {"activation": activation, "depth": depth, "width": width, "init": init, "steps": 25}
    )
    return config.expand(cfg)[0][0]


@functools.lru_cache(maxsize=16)
def _forward_stats(activation: str, depth: int, width: int, batch: int, init: str) -> Any:
    """jit(key -> (mean, var) of phi(h_l), each (depth,)) for one random net and input batch."""
    from bench.models import make_mlp

    static = _static(activation, depth, width, init)
    model = make_mlp(static, (width,), 10)
    phi = activations.get(activation)
    hp = {"init_scale": jnp.float32(1.0), "bias_init": jnp.float32(0.0), "slope": None}

    def stats(a):
        m = jnp.mean(a)
        return m, jnp.mean(jnp.square(a - m))

    def run(key):
        k_init, k_x = jax.random.split(key)
        params = model.init(k_init, hp)
        x = jax.random.normal(k_x, (batch, width))
        a = phi(x @ params["first"]["w"] + params["first"]["b"])

        def layer(a, p):
            a = phi(a @ p["w"] + p["b"])
            return a, stats(a)

        _, (means, vars_) = lax.scan(layer, a, params["hidden"])
        m0, v0 = stats(a)
        return jnp.concatenate([m0[None], means]), jnp.concatenate([v0[None], vars_])

    return jax.jit(run)


def measure(
    activation: str, *, depth: int, width: int, batch: int, seeds: int, init: str = "lecun_normal"
) -> dict[str, np.ndarray]:
    """Per seed and hidden layer: ``act_mean`` and ``act_var`` (seeds, depth)."""
    f = _forward_stats(activation, depth, width, batch, init)
    out = [f(k) for k in jax.random.split(jax.random.key(0), seeds)]
    return {
        "act_mean": np.array([np.asarray(m, np.float64) for m, _ in out]),
        "act_var": np.array([np.asarray(v, np.float64) for _, v in out]),
    }


def _first_moment(activation: str, q: np.ndarray) -> np.ndarray:
    """``E[phi(sqrt(q) z)]`` by Gauss-Legendre on z-panels of width 0.25 over |z| <= 10, split at
    0 (the kink of relu and selu: plain Gauss-Hermite is only 1e-3 accurate across it)."""
    t, w = np.polynomial.legendre.leggauss(16)
    edges = np.linspace(-10.0, 10.0, 81)
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    z = (mid[:, None] + half[:, None] * t).ravel()
    wz = (half[:, None] * w).ravel() * np.exp(-0.5 * z * z)
    wz /= wz.sum()
    phi = activations.get(activation)
    with jax.enable_x64(True):
        x = jnp.asarray(np.sqrt(np.asarray(q, np.float64))[:, None] * z)
        return np.asarray(phi(x)) @ wz


def predict(activation: str, depth: int) -> dict[str, np.ndarray]:
    """Mean-field ``q_l``, activation mean and variance for layers 1..depth (sigma_w = 1)."""
    q = np.empty(depth)
    q[0] = 1.0  # unit-variance inputs, Var W = 1 / fan_in, no bias: q_1 = E[x^2] = 1
    for i in range(1, depth):
        q[i] = theory.length_map(activation, q[i - 1], 1.0, 0.0)
    m1 = _first_moment(activation, q)
    m2, _ = theory.moments(activation, q)
    return {"q": q, "act_mean": m1, "act_var": np.asarray(m2) - m1**2}


def _summarise(act: str, raw: dict[str, np.ndarray], pred: dict[str, np.ndarray]) -> dict:
    depth = raw["act_mean"].shape[1]
    late = slice(depth // 10, depth)  # after the first 10% of layers: the fixed point's level
    late_var = raw["act_var"][:, late].mean(axis=1)
    dev_mean = np.max(np.abs(raw["act_mean"]), axis=1)  # per seed, max over layers
    dev_var = np.max(np.abs(raw["act_var"] - 1.0), axis=1)
    last_mean, last_var = raw["act_mean"][:, -1], raw["act_var"][:, -1]
    # Layers over which the variance halves (relu) / the per-layer geometric factor.
    ratio = raw["act_var"][:, 1:] / raw["act_var"][:, :-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        gfactor = np.exp(np.nanmean(np.log(ratio[:, : min(20, depth - 1)]), axis=1))
    q_star = theory.q_star(act, 1.0, 0.0)
    return {
        "activation": act,
        "max_abs_mean": _spread(dev_mean),
        "max_abs_var_minus_1": _spread(dev_var),
        "last_layer_mean": _spread(last_mean),
        "last_layer_var": _spread(last_var),
        "late_layers": [late.start + 1, depth],
        "late_var_mean": _spread(late_var),
        "late_var_mean_ci95": _boot_ci(late_var),
        "var_factor_per_layer_first20": _spread(gfactor),
        "within_tolerance_seeds": int(np.sum((dev_mean <= TOLERANCE) & (dev_var <= TOLERANCE))),
        "n_seeds": int(dev_mean.size),
        "theory": {
            "q_star": _clean(q_star),
            "chi1": _clean(theory.chi1(act, 1.0, 0.0)),
            "max_abs_mean": _clean(np.max(np.abs(pred["act_mean"]))),
            "max_abs_var_minus_1": _clean(np.max(np.abs(pred["act_var"] - 1.0))),
            "last_layer_mean": _clean(pred["act_mean"][-1]),
            "last_layer_var": _clean(pred["act_var"][-1]),
            "var_factor_per_layer_first20": _clean(
                np.exp(
                    np.mean(
                        np.log(
                            pred["act_var"][1 : min(21, depth)]
                            / pred["act_var"][: min(20, depth - 1)]
                        )
                    )
                )
            ),
        },
    }


def _boot_ci(v: np.ndarray, n_boot: int = 2000) -> list[float | None]:
    """Percentile-bootstrap 95% CI of the mean over seeds."""
    v = np.asarray(v, np.float64)
    rng = np.random.default_rng(0)
    boot = v[rng.integers(0, v.size, (n_boot, v.size))].mean(axis=1)
    return [_clean(x) for x in np.percentile(boot, [2.5, 97.5])]


def _clean(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _spread(v: np.ndarray) -> dict[str, float | None]:
    """Mean, standard deviation and range over seeds."""
    v = np.asarray(v, np.float64)
    return {
        "mean": _clean(np.mean(v)),
        "sd": _clean(np.std(v, ddof=1)) if v.size > 1 else None,
        "min": _clean(np.min(v)),
        "max": _clean(np.max(v)),
    }


def _fmt(s: dict[str, Any], digits: int = 4) -> str:
    if s["mean"] is None:
        return "n/a"
    sd = f" ± {s['sd']:.2g}" if s.get("sd") is not None else ""
    return f"{s['mean']:.{digits}g}{sd} [{s['min']:.{digits}g}, {s['max']:.{digits}g}]"


def _g(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}g}"


def _figure(ctx: Context, raw: dict, preds: dict, depth: int) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = np.arange(1, depth + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for act in ACTIVATIONS:
        for ax, key in ((ax1, "act_mean"), (ax2, "act_var")):
            v = raw[act][key]
            (line,) = ax.plot(layers, np.median(v, 0), lw=1.4, label=f"{act} (median of seeds)")
            ax.fill_between(layers, v.min(0), v.max(0), color=line.get_color(), alpha=0.25, lw=0)
            ax.plot(
                layers, preds[act][key], "--", color=line.get_color(), lw=1, label=f"{act} theory"
            )
    ax1.axhline(0, color="k", lw=0.6)
    ax1.set(xlabel="hidden layer l", ylabel="mean of phi(h_l)", title="activation mean")
    ax2.axhspan(1 - TOLERANCE, 1 + TOLERANCE, color="g", alpha=0.15, label="1 ± 1%")
    ax2.set(
        xlabel="hidden layer l",
        ylabel="variance of phi(h_l)",
        yscale="log",
        title="activation variance",
    )
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    fig.suptitle(
        "LeCun-normal init, N(0,1) inputs: bands = min-max over seeds, dashed = mean field"
    )
    name = save_figure(ctx, fig, "layers.png")

    # Zoom on selu: deviation from (0, 1) per layer, each seed.
    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    v = raw["selu"]
    for i in range(v["act_var"].shape[0]):
        ax.plot(
            layers,
            v["act_var"][i] - 1,
            color="C0",
            lw=0.7,
            alpha=0.7,
            label="var - 1" if i == 0 else None,
        )
        ax.plot(
            layers,
            v["act_mean"][i],
            color="C1",
            lw=0.7,
            alpha=0.7,
            label="mean" if i == 0 else None,
        )
    ax.axhspan(-TOLERANCE, TOLERANCE, color="g", alpha=0.12, label="±1%")
    ax.set(xlabel="hidden layer l", ylabel="deviation from (0, 1)", title="selu, each seed")
    ax.legend(fontsize=8)
    return [name, save_figure(ctx, fig, "selu_deviation.png")]


def _width_scan(widths: tuple[int, ...], depth: int, batch: int, seeds: int) -> list[dict]:
    """selu's per-seed, per-layer activation mean and variance at each width."""
    return [
        {"width": w, **measure("selu", depth=depth, width=w, batch=batch, seeds=seeds)}
        for w in widths
    ]


def _scan_summary(scan: list[dict]) -> list[dict]:
    """selu's worst deviation from (0, 1) over the layers against the width."""
    return [
        {
            "width": r["width"],
            "seeds": int(r["act_mean"].shape[0]),
            "max_abs_mean": _spread(np.max(np.abs(r["act_mean"]), axis=1)),
            "max_abs_var_minus_1": _spread(np.max(np.abs(r["act_var"] - 1.0), axis=1)),
        }
        for r in scan
    ]


def _slope(scan: list[dict], key: str) -> float | None:
    """Fitted exponent p of (mean over seeds of ``key``) ~ width^p."""
    if len(scan) < 2:
        return None
    x = np.log([r["width"] for r in scan])
    y = np.log([r[key]["mean"] for r in scan])
    return _clean(np.polyfit(x, y, 1)[0])


def _width_at(scan: list[dict], key: str, level: float) -> float | None:
    """Width at which the power-law fit of (mean over seeds of ``key``) reaches ``level``."""
    if len(scan) < 2:
        return None
    x = np.log([r["width"] for r in scan])
    y = np.log([r[key]["mean"] for r in scan])
    p, c = np.polyfit(x, y, 1)
    return _clean(np.exp((np.log(level) - c) / p)) if p < 0 else None


def spec(size: str) -> dict[str, Any]:
    """The measurement: depth, width, batch and seeds, and the width scan."""
    return {
        "depth": pick(size, tiny=6, default=100, full=100),
        "width": pick(size, tiny=32, default=512, full=2048),
        "batch": pick(size, tiny=32, default=1024, full=4096),
        "seeds": pick(size, tiny=2, default=8, full=16),
        "init": "lecun_normal",
        "scan_widths": pick(
            size, tiny=[16, 32], default=[128, 512, 1024], full=[256, 1024, 2048, 4096]
        ),
        "scan_seeds": pick(size, tiny=2, default=8, full=8),
    }


# --------------------------------------------------------------------------- analysis (pure)


def worst_deviation(raw: dict[str, np.ndarray]) -> np.ndarray:
    """Per seed: max over layers of max(|mean|, |var - 1|)."""
    return np.maximum(
        np.max(np.abs(raw["act_mean"]), axis=1), np.max(np.abs(raw["act_var"] - 1.0), axis=1)
    )


def analyse(
    raw: dict[str, dict[str, np.ndarray]],
    preds: dict[str, dict[str, np.ndarray]],
    scan: list[dict],
    sp: dict[str, Any],
) -> dict[str, Any]:
    """Per-seed, per-layer measurements and the mean-field predictions -> the summary."""
    from bench import stats

    rows = {a: _summarise(a, raw[a], preds[a]) for a in ACTIVATIONS}
    dev = worst_deviation(raw["selu"])
    scan_s = _scan_summary(scan)
    return {
        "depth": sp["depth"],
        "width": sp["width"],
        "tolerance": TOLERANCE,
        "selu_worst_deviation": {
            "per_seed": dev.tolist(),
            "median": float(np.median(dev)),
            "ci": list(cast(tuple[float, float], stats.bootstrap_ci(dev.tolist(), "median"))),
        },
        "activations": rows,
        "width_scan": scan_s,
        "fit": {
            "mean_exponent": _slope(scan_s, "max_abs_mean"),
            "var_exponent": _slope(scan_s, "max_abs_var_minus_1"),
            "width_at_tolerance": _width_at(scan_s, "max_abs_var_minus_1", TOLERANCE),
        },
        "per_layer": {
            a: {
                "act_mean_median": np.median(raw[a]["act_mean"], 0).tolist(),
                "act_var_median": np.median(raw[a]["act_var"], 0).tolist(),
                "act_var_min": raw[a]["act_var"].min(0).tolist(),
                "act_var_max": raw[a]["act_var"].max(0).tolist(),
                "theory_act_mean": preds[a]["act_mean"].tolist(),
                "theory_act_var": preds[a]["act_var"].tolist(),
            }
            for a in ACTIVATIONS
        },
        "protocol": grid_block(
            list(range(sp["seeds"])),
            "percentile bootstrap over seeds (median of the per-seed worst deviation; mean of "
            "the late-layer variance)",
        ),
    }


def verdict(s: dict[str, Any]) -> tuple[str, str]:
    """Held when the 95% CI of the median (over seeds) worst-layer deviation of selu from (0, 1)
    lies below the 1% tolerance, not held when above it, inconclusive when it straddles it."""
    w, tol = s["selu_worst_deviation"], s["tolerance"]
    st = status(side(w["ci"], tol), -1)
    sel = s["activations"]["selu"]
    lo, hi = sel["late_var_mean_ci95"]
    a0, a1 = sel["late_layers"]
    text = (
        f"selu's worst layer deviated from (0, 1) by a median {w['median']:.3g} over "
        f"{len(w['per_seed'])} seeds (95% CI [{w['ci'][0]:.3g}, {w['ci'][1]:.3g}]) against the "
        f"{tol:.0%} tolerance, through {s['depth']} layers at width {s['width']}; "
        f"{sel['within_tolerance_seeds']}/{sel['n_seeds']} seeds stayed within it at every "
        "layer."
    )
    if st != HELD and lo is not None and hi is not None:
        text += (
            f" Averaged over layers {a0}-{a1} the variance is {sel['late_var_mean']['mean']:.4f} "
            f"(95% CI [{lo:.4f}, {hi:.4f}]): "
            + (
                "the fixed point itself held; the excursions are layer-to-layer fluctuations "
                "around (0, 1), not a drift."
                if lo <= 1.0 + tol and hi >= 1.0 - tol
                else "off 1 by more than the tolerance: a drift, not only noise."
            )
        )
    p_var, w1 = s["fit"]["var_exponent"], s["fit"]["width_at_tolerance"]
    if st != HELD and p_var is not None:
        text += f" The excursions scale with width as |var - 1| ~ width^{p_var:.2f}" + (
            f": finite-width fluctuations (mean field is the infinite-width limit); the fit "
            f"reaches {tol:.0%} at width ~ {_g(w1, 2)}."
            if p_var < -0.25
            else ", not clearly shrinking, so not only finite-width noise."
        )
    r, t = s["activations"]["relu"], s["activations"]["tanh"]
    text += (
        f" At the same init relu's activation variance shrank by a factor "
        f"{_g(r['var_factor_per_layer_first20']['mean'], 3)} per layer (theory "
        f"{_g(r['theory']['var_factor_per_layer_first20'], 3)}: halving), and tanh's fell to "
        f"{_g(t['last_layer_var']['mean'], 3)} at layer {s['depth']} (theory "
        f"{_g(t['theory']['last_layer_var'], 3)}: q_l -> 0 like 1/l), as the claim says."
    )
    return st, text


def run(ctx: Context) -> dict[str, Any]:
    sp = spec(ctx.size)
    depth, width, batch, seeds = sp["depth"], sp["width"], sp["batch"], sp["seeds"]
    raw = {a: measure(a, depth=depth, width=width, batch=batch, seeds=seeds) for a in ACTIVATIONS}
    preds = {a: predict(a, depth) for a in ACTIVATIONS}
    scan = _width_scan(tuple(sp["scan_widths"]), depth, batch, sp["scan_seeds"])
    s = analyse(raw, preds, scan, sp)
    figures = _figure(ctx, raw, preds, depth)
    return report(ctx, sp, s, figures)


def report(ctx: Context, sp: dict[str, Any], s: dict[str, Any], figures: list[str]) -> dict:
    """REPORT.md and summary.json from the summary (every number in the text comes from it)."""
    depth, width, rows, scan = s["depth"], s["width"], s["activations"], s["width_scan"]
    batch, seeds, scan_widths, scan_seeds = (
        sp["batch"],
        sp["seeds"],
        sp["scan_widths"],
        sp["scan_seeds"],
    )
    claim = (
        "Klambauer et al. 2017 (Self-Normalizing Neural Networks): SELU, "
        "`lambda * elu_alpha(x)` with alpha = 1.6732632423543772 and lambda = 1.0507009873554805, "
        "has a stable and attracting fixed point of the activations' mean and variance at "
        "(0, 1) when the weights have Var W = 1/fan_in (LeCun-normal init). The seed's "
        "statement: through 100 layers at LeCun-normal init the activations' mean and variance "
        "stay at (0, 1) within 1%, while ReLU's variance halves at every layer at the same "
        "init and tanh's shrinks towards its fixed point (0)."
    )
    setup = (
        f"bench.models' MLP at initialisation: {depth} hidden layers of width {width} "
        f"(input dimension {width}), LeCun-normal weights (truncated normal rescaled to "
        f"Var W = 1/fan_in), zero biases; inputs x ~ N(0, 1), a batch of {batch}; {seeds} "
        "seeds (each a new net and a new batch). Per hidden layer: the mean and variance of "
        "phi(h_l) over all examples and units. Deviation of a seed = max over the "
        f"{depth} layers of |mean| and of |variance - 1|. Spread: mean ± sd [min, max] over "
        "seeds; CI: percentile bootstrap over seeds. Theory: the mean-field length map "
        "`activations.theory.length_map` from q_1 = 1 at sigma_w = 1, sigma_b = 0, with the "
        "activation mean and variance of N(0, q_l) pre-activations (Gauss-Legendre "
        "quadrature); q* = `activations.theory.q_star(act, 1, 0)`. A width scan (selu only, "
        f"widths {', '.join(map(str, scan_widths))}, {scan_seeds} seeds, same depth and batch) "
        "asks whether the deviation is a finite-width effect.\n\n"
        f"Command: `{ctx.command}`."
    )
    lines = [
        "| activation | max_l abs(mean) | theory | max_l abs(var - 1) | theory "
        "| var, last layer | theory | var factor per layer (layers 1-21) | theory | q* "
        "| seeds within 1% |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for a in ACTIVATIONS:
        r, t = rows[a], rows[a]["theory"]
        lines.append(
            f"| {a} | {_fmt(r['max_abs_mean'])} | {_g(t['max_abs_mean'])} | "
            f"{_fmt(r['max_abs_var_minus_1'])} | {_g(t['max_abs_var_minus_1'])} | "
            f"{_fmt(r['last_layer_var'])} | {_g(t['last_layer_var'])} | "
            f"{_fmt(r['var_factor_per_layer_first20'])} | "
            f"{_g(t['var_factor_per_layer_first20'])} | {_g(t['q_star'])} | "
            f"{r['within_tolerance_seeds']}/{r['n_seeds']} |"
        )
    scan_lines = [
        "| width | seeds | max_l abs(mean) | max_l abs(var - 1) |",
        "| --- | --- | --- | --- |",
        *(
            f"| {r['width']} | {r['seeds']} | {_fmt(r['max_abs_mean'])} | "
            f"{_fmt(r['max_abs_var_minus_1'])} |"
            for r in scan
        ),
    ]
    p_mean, p_var = s["fit"]["mean_exponent"], s["fit"]["var_exponent"]
    w_1pct = s["fit"]["width_at_tolerance"]
    sel = rows["selu"]
    lo, hi = sel["late_var_mean_ci95"]
    a0, a1 = sel["late_layers"]
    w = s["selu_worst_deviation"]
    results_md = (
        "Published (Klambauer et al. 2017): fixed point (mean, variance) = (0, 1) for selu at "
        "Var W = 1/fan_in; seed's tolerance 1% over 100 layers. Entries: mean ± sd [min, max] "
        "over seeds.\n\n" + "\n".join(lines) + "\n\n"
        f"selu, variance averaged over layers {a0}-{a1} (the level the fixed point holds): "
        f"{_fmt(sel['late_var_mean'])}, 95% CI of the mean over seeds [{_g(lo)}, {_g(hi)}] "
        "(theory 1).\n\n"
        "Width scan, selu:\n\n" + "\n".join(scan_lines) + "\n\n"
        f"Fitted exponent of the deviation against width: |mean| ~ width^{_g(p_mean, 2)}, "
        f"|var - 1| ~ width^{_g(p_var, 2)}; the fit reaches 1% (mean over seeds of the "
        f"worst layer) at width ~ {_g(w_1pct, 3)}."
    )

    results_md += (
        f"\n\nWorst layer's deviation max(|mean|, |var - 1|) per seed, selu: median "
        f"{w['median']:.3g}, 95% CI [{w['ci'][0]:.3g}, {w['ci'][1]:.3g}] (tolerance "
        f"{s['tolerance']:.0%})."
    )
    setup += "\n\n" + protocol_md(s["protocol"])
    st, text = verdict(s)
    return write_report(
        ctx,
        title=TITLE,
        claim=claim,
        setup=setup,
        results_md=results_md,
        verdict=f"**{st.capitalize()}.** {text}",
        figures=figures,
        config=sp,
        data=clean({**s, "status": st}),
    )

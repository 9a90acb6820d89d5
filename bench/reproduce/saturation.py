"""Claim 8 (the seed's slides): non-zero-centred activations train slower (SGD zig-zags).

Controlled pairs that differ in centring only. Each pair is one activation ``phi`` and its
centred copy ``phi(h) - c_l`` (``act_offset``) with the offset folded into the next layer's
initial bias (``fold_offset``: ``W (phi - c) + (b + W c) = W phi + b``), so that for every seed
both members start as *the same function*: the same pre-activations, the same saturation, the
same back-propagated gradients (hence the same chi_1). What differs is the parametrisation:
the weight gradients of layers 2.. see centred inputs ``phi - c`` instead of ``phi``.

- sigmoid vs sigmoid - 1/2: ``c = 1/2`` exactly (``E sigmoid(h) = 1/2`` for any symmetric
  ``h``, and zero-mean weights make every pre-activation symmetric at init);
- relu vs centred relu: ``c_l = E relu(h_l)`` per layer, measured at init (mean over examples,
  units and ``offset_seeds``, seeds used nowhere else) with ``bench.diagnostics.at_init``; the
  mean-field value ``sqrt(q_l / (2 pi))`` from the measured ``q_l`` is reported next to it.

Gain: the hidden-to-hidden weights have std ``sigma_w / sqrt(width)`` with ``sigma_w`` the
critical gain of the plain member (``activations.theory.critical_sigma_w``: chi_1 = 1; sigmoid
10.15, relu sqrt 2); the first layer and the head keep LeCun's ``1 / sqrt(fan_in)``
(``init = "gaussian"`` with one std per weight layer). chi_1 is then 1 for both members of
both pairs (the centred member computes the same function at init).

Measured:

- speed: lr tuned per member on tuning seeds by a bracketing search, then 8 fresh measurement
  seeds (``bench.protocol``); Kaplan-Meier median steps to the target and the paired ratio
  plain / centred (the same seeds: the same initial function and minibatches);
- zig-zag: the cosine between successive SGD updates (= minibatch gradients, plain SGD) of
  each unit's incoming weight vector, averaged over units, per layer, over the first
  ``zigzag.steps`` steps of the measurement seeds, in a dedicated loop (``zigzag_program``)
  that repeats the harness's training exactly (same init, same minibatches, same update);
  at each member's tuned lr and, to remove the lr from the comparison, with the centred
  member at the plain member's lr (the same loop where the tuned lrs coincide); the loops'
  outputs are kept under ``runs/cache`` so a rerun rebuilds the report from files;
- saturation: ``|phi'(h)| < 10%`` of its maximum (``saturation_rtol = 0.1``), during the
  same loop, on its own axis. 10%: such a unit passes back less than a tenth of the gradient
  it passes at its most sensitive point (sigmoid: outputs outside [0.026, 0.974], |h| > 3.64);
  the old 1% (|h| > 5.99) read 0 for sigmoid at init and a few % at the end. relu's count is
  its zero side (phi' = 0), not a squashing tail;
- the identity, as a sanity check only: the share of (example, unit) pairs whose incoming
  weight gradients share one sign (1 whenever the layer's inputs are all positive).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
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

TITLE = "Zero-centring with controls: sigmoid vs sigmoid - 1/2, relu vs centred relu"

PAIRS = ("sigmoid", "relu")
MEMBERS = ("plain", "centred")
SATURATION_RTOL = 0.1
DIAG_KEEP = ("saturation_fraction", "same_sign_fraction", "act_mean")


def key(pair: str, member: str) -> str:
    return f"{pair}/{member}"


def spec(size: str, data_dir: str | None = None) -> dict[str, Any]:
    """The study as data: the sweep settings every member shares, and the loop's settings."""
    steps = pick(size, tiny=40, default=2000, full=6000)
    sweep = {
        "dataset": "mnist1d",
        "depth": 4,
        "width": pick(size, tiny=16, default=128, full=256),
        "optimizer": "sgd",
        "batch_size": pick(size, tiny=16, default=64, full=128),
        "steps": steps,
        "lr": pick(
            size,
            tiny=[0.3],
            default=[0.03, 0.1, 0.3, 1.0, 3.0],
            full=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
        ),
        "protocol": "tuned",
        # tiny: as many tuning lanes as measurement lanes, so both stages share one program
        "tuning_seeds": pick(
            size, tiny=[1000, 1001], default=[1000, 1001, 1002], full=[1000, 1001, 1002]
        ),
        "lr_extensions": pick(size, tiny=0, default=3, full=3),
        "seed": pick(size, tiny=[0, 1], default=list(range(8)), full=list(range(10))),
        "eval_every": pick(size, tiny=10, default=25, full=50),
        "eval_size": pick(size, tiny=64, default=1000, full=1000),
        "target": pick(size, tiny=0.8, default=0.3, full=0.2),
        **({"data_dir": data_dir} if data_dir else {}),
    }
    return {
        "sweep": sweep,
        "zigzag": {
            "steps": pick(size, tiny=20, default=1000, full=2000),
            "every": pick(size, tiny=10, default=50, full=100),
            "diag_size": pick(size, tiny=64, default=512, full=1000),
        },
        "offset_seeds": pick(
            size, tiny=[5000], default=[5000, 5001, 5002, 5003], full=[5000, 5001, 5002, 5003]
        ),
        "saturation_rtol": SATURATION_RTOL,
    }


def gain(act: str) -> float:
    """sigma_w of the hidden-to-hidden weights: the critical gain (chi_1 = 1) of ``act``."""
    from activations import theory

    return float(theory.critical_sigma_w(act, 0.0))


def init_std(sweep: dict[str, Any], n_in: int, sigma_w: float) -> list[float]:
    """One std per weight layer: LeCun for the first layer and the head, sigma_w / sqrt(width)
    for the depth - 1 hidden-to-hidden layers."""
    w, d = sweep["width"], sweep["depth"]
    return [1 / math.sqrt(n_in), *[sigma_w / math.sqrt(w)] * (d - 1), 1 / math.sqrt(w)]


def member_config(
    sp: dict[str, Any],
    pair: str,
    member: str,
    *,
    n_in: int,
    offsets: list[float] | float,
    sigma_w: float,
) -> dict[str, Any]:
    """The tuned sweep of one member (a sweep config dict)."""
    centred = member == "centred"
    return {
        **sp["sweep"],
        "experiment": f"saturation-{pair}-{member}",
        "activation": pair,
        "init": "gaussian",
        "init_std": init_std(sp["sweep"], n_in, sigma_w),
        "act_offset": offsets if centred else 0.0,
        "fold_offset": centred,
    }


# --------------------------------------------------------------------------- the zig-zag loop


def unit_cosines(g: Any, prev: Any) -> Any:
    """Per layer (1, 2, .., depth, head), the cosine between ``g`` and ``prev`` of each unit's
    incoming weight vector, averaged over the units where both are nonzero (NaN if none)."""
    import jax.numpy as jnp

    def per_unit(a, b):  # (..., fan_in, units) -> (...,): fan_in is the second-last axis
        dot = jnp.sum(a * b, axis=-2)
        norm = jnp.sqrt(jnp.sum(a * a, axis=-2) * jnp.sum(b * b, axis=-2))
        ok = norm > 0
        cos = jnp.where(ok, dot / jnp.where(ok, norm, 1.0), 0.0)
        return jnp.sum(cos, -1) / jnp.where(ok.sum(-1) > 0, ok.sum(-1), jnp.nan)

    return jnp.concatenate(
        [
            per_unit(g["first"]["w"], prev["first"]["w"])[None],
            per_unit(g["hidden"]["w"], prev["hidden"]["w"]),
            per_unit(g["head"]["w"], prev["head"]["w"])[None],
        ]
    )


@functools.lru_cache(maxsize=8)
def zigzag_program(static: Any, in_shape: tuple[int, ...], num_classes: int, every: int):
    """``run(key, lr, hp, x, y, x_diag, y_diag, blocks)``: plain SGD as ``bench.train`` runs it
    (same init split, same minibatches, update ``-lr * grad``) for ``blocks * every`` steps.
    Returns the minibatch ``loss`` per step, ``cos`` (blocks, depth + 1): the mean over each
    block's steps of ``unit_cosines(grad_t, grad_{t-1})``, and ``diag_<metric>`` (blocks + 1,
    depth) of ``bench.diagnostics`` at steps 0, every, ..."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    import activations
    from bench import diagnostics, models

    model = models.make_model(static, in_shape, num_classes)
    measure = diagnostics.make_measure(static, in_shape, num_classes)
    batch = static.batch_size

    def run(key, lr, hp, x, y, x_diag, y_diag, blocks):
        k_init, k_data = jax.random.split(key)
        params = model.init(k_init, hp)
        n = x.shape[0]

        def loss_fn(p, xb, yb):
            logits = model.apply(p, xb, hp)
            return jnp.mean(activations.softmax_cross_entropy_with_integer_labels(logits, yb))

        def step(carry, t):
            params, prev = carry
            bits = jax.random.bits(jax.random.fold_in(k_data, t), (batch,), jnp.uint32)
            idx = (bits % jnp.uint32(n)).astype(jnp.int32)
            loss, g = jax.value_and_grad(loss_fn)(params, x[idx], y[idx])
            cos = jnp.where(t > 0, unit_cosines(g, prev), jnp.nan)
            params = jax.tree.map(lambda p, d: p - lr * d, params, g)
            return (params, g), (loss, cos)

        def diag(p):
            m = measure(p, hp, x_diag, y_diag)
            return {k: m[k] for k in DIAG_KEEP}

        def block(carry, b):
            carry, (loss, cos) = lax.scan(step, carry, b * every + jnp.arange(every))
            return carry, (loss, jnp.nanmean(cos, 0), diag(carry[0]))

        zeros = jax.tree.map(jnp.zeros_like, params)
        first = diag(params)
        _, (loss, cos, diags) = lax.scan(block, (params, zeros), jnp.arange(blocks))
        out = {"loss": loss.reshape(-1), "cos": cos}
        for k in DIAG_KEEP:
            out[f"diag_{k}"] = jnp.concatenate([first[k][None], diags[k]])
        return out

    return jax.jit(run, static_argnames="blocks")


def zigzag(
    cfg: dict[str, Any], lr: float, seeds: list[int], loop: dict[str, Any], saturation_rtol: float
) -> dict[str, Any]:
    """The zig-zag loop of one member (a sweep config dict) at ``lr`` on ``seeds``: per seed
    ``cos`` (blocks, depth + 1), ``diag_*`` (blocks + 1, depth), ``diverged``."""
    import jax
    import jax.numpy as jnp

    from bench import data as bench_data
    from bench import diagnostics
    from bench.execute import train_data

    cfg = {**cfg, "saturation_rtol": saturation_rtol, "diag_size": loop["diag_size"]}
    static, dyn, c = diagnostics.static_from_spec(cfg)
    ds = bench_data.load(static.dataset, data_dir=c.data_dir, **c.data)
    td = train_data(ds.x_train, ds.y_train, static.eval_size)
    n_diag = min(loop["diag_size"], static.eval_size)
    x, y = jnp.asarray(td.x_train), jnp.asarray(td.y_train)
    xd, yd = x[:n_diag], y[:n_diag]
    every = loop["every"]
    fn = zigzag_program(static, tuple(x.shape[1:]), int(ds.num_classes), every)
    hp = {k: jnp.float32(np.nan if dyn.get(k) is None else dyn[k]) for k in dyn if k != "seed"}
    hp = {k: hp[k] for k in ("init_scale", "bias_init", "slope")}
    rows = []
    for s in seeds:
        o = fn(jax.random.PRNGKey(s), jnp.float32(lr), hp, x, y, xd, yd, loop["steps"] // every)
        o = {k: np.asarray(v) for k, v in o.items()}
        o["diverged"] = bool(~np.isfinite(o.pop("loss")).all())
        rows.append(o)
    return {
        "lr": float(lr),
        "seeds": list(seeds),
        "steps": np.arange(1, loop["steps"] // every + 1) * every,
        "diag_steps": np.arange(loop["steps"] // every + 1) * every,
        "cos": np.stack([r["cos"] for r in rows]),
        **{f"diag_{k}": np.stack([r[f"diag_{k}"] for r in rows]) for k in DIAG_KEEP},
        "diverged": [r["diverged"] for r in rows],
    }


# --------------------------------------------------------------------------- analysis (pure)


def _nanmean(a: Any, axis: Any = None) -> Any:
    with warnings.catch_warnings():  # an all-NaN slice (every seed diverged) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(a, np.float64), axis=axis)


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _mean_ci(values: Sequence[float | None]) -> dict[str, Any]:
    v = [float(x) for x in values if x is not None and math.isfinite(x)]
    return {
        "mean": float(np.mean(v)) if v else None,
        "ci": boot_ci(v, "mean") if len(v) > 1 else None,
        "n": len(v),
    }


def zigzag_stats(plain: dict[str, Any], centred: dict[str, Any]) -> dict[str, Any]:
    """Mean successive-update cosine of layers 2.. and the head (their inputs are the previous
    activations) per seed over the loop's steps, for both members, and the paired difference
    centred - plain with a seed-bootstrap 95% CI (> 0: the centred member zig-zags less).
    Diverged seeds are left out and counted. Per layer: the means over seeds."""
    out: dict[str, Any] = {"lr_plain": plain["lr"], "lr_centred": centred["lr"]}
    per_seed: dict[str, list[float | None]] = {}
    for name, z in (("plain", plain), ("centred", centred)):
        cos = np.asarray(z["cos"], np.float64)  # (S, blocks, depth + 1)
        ok = ~np.asarray(z["diverged"], bool)
        per_seed[name] = [
            _num(_nanmean(c[:, 1:])) if good else math.nan for c, good in zip(cos, ok, strict=True)
        ]
        out[name] = _mean_ci(per_seed[name])
        out[name]["per_layer"] = (
            [_num(x) for x in _nanmean(_nanmean(cos[ok], 1), 0)] if ok.any() else None
        )
        out[name]["diverged"] = int((~ok).sum())
    diff = [
        c - p
        for p, c in zip(per_seed["plain"], per_seed["centred"], strict=True)
        if p is not None and c is not None and math.isfinite(p) and math.isfinite(c)
    ]
    out["diff"] = _mean_ci(diff)
    return out


def saturation_stats(z: dict[str, Any]) -> dict[str, Any]:
    """Saturated share of (example, unit) pairs, mean over layers 2.. per seed, at init and at
    the end of the loop (mean over seeds, 95% CI), and its per-layer means over the run."""
    sat = np.asarray(z["diag_saturation_fraction"], np.float64)  # (S, D, depth)
    ok = ~np.asarray(z["diverged"], bool)
    sat = sat[ok]
    return {
        "init": _mean_ci([float(x) for x in sat[:, 0, 1:].mean(-1)]),
        "end": _mean_ci([float(x) for x in sat[:, -1, 1:].mean(-1)]),
        "run_per_layer": [_num(x) for x in _nanmean(sat, (0, 1))] if sat.size else None,
    }


def analyse(
    tuned: dict[str, dict[str, Any]],
    zz: dict[str, dict[str, Any]],
    init: dict[str, dict[str, Any]],
    setup: dict[str, Any],
    sp: dict[str, Any],
) -> dict[str, Any]:
    """Everything the verdict and the report read.

    ``tuned``: per member key ("sigmoid/plain", ...) ``{"records", "protocol"}`` of its tuned
    sweep; ``zz``: per member key the zig-zag loop at its tuned lr, and per pair
    ``"<pair>/centred@plain_lr"``; ``init``: per member key its at-init diagnostics (arrays
    (seeds, depth)); ``setup``: per pair ``sigma_w``, ``chi1``, ``offsets`` (and their
    mean-field values)."""
    members: dict[str, Any] = {}
    for k, t in tuned.items():
        meas = [r for r in t["records"] if r["stage"] == "measure"]
        (row,) = t["protocol"]["settings"]
        members[k] = {
            "lr": row["lr"],
            "bracket_closed": row["bracket"]["closed"],
            **km(select(meas)),
        }
    ratios, zig, sat, checks = {}, {}, {}, {}
    for pair in PAIRS:
        p, c = key(pair, "plain"), key(pair, "centred")
        if p not in tuned or c not in tuned:
            continue
        mp = [r for r in tuned[p]["records"] if r["stage"] == "measure"]
        mc = [r for r in tuned[c]["records"] if r["stage"] == "measure"]
        ratios[pair] = ratio(select(mp), select(mc))
        zig[pair] = {
            "own_lr": zigzag_stats(zz[p], zz[c]),
            "plain_lr": zigzag_stats(zz[p], zz[f"{c}@plain_lr"]),
        }
        for m in (p, c):
            sat[m] = saturation_stats(zz[m])
        ip, ic = init[p], init[c]
        checks[pair] = {
            # the identity: all-positive inputs -> every gradient of a unit shares one sign
            "same_sign_upper": {
                m: _num(_nanmean(np.asarray(i["same_sign_fraction"])[:, 1:]))
                for m, i in (("plain", ip), ("centred", ic))
            },
            "act_mean": {
                m: [_num(x) for x in _nanmean(i["act_mean"], 0)]
                for m, i in (("plain", ip), ("centred", ic))
            },
            # the fold: the same function at init, so the same back-propagated gradients
            "grad_sq_ratio_max_dev": _num(
                np.max(
                    np.abs(np.asarray(ic["grad_sq"], np.float64) / np.asarray(ip["grad_sq"]) - 1)
                )
            ),
            "saturation_init": {
                m: [_num(x) for x in _nanmean(i["saturation_fraction"], 0)]
                for m, i in (("plain", ip), ("centred", ic))
            },
        }
    return {
        "target": sp["sweep"]["target"],
        "steps": sp["sweep"]["steps"],
        "saturation_rtol": sp["saturation_rtol"],
        "setup": setup,
        "members": members,
        "ratios": ratios,
        "zigzag": zig,
        "saturation": sat,
        "checks": checks,
        "protocol": {k: protocol_block(t["protocol"]) for k, t in tuned.items()},
    }


def _part(r: dict[str, Any] | None) -> int:
    return side(r["ci"], 1.0, r["ci_bound"]) if r and r.get("ratio") is not None else 0


def verdict(s: dict[str, Any]) -> tuple[str, str]:
    """Per pair, the paired ratio of KM median steps plain / centred against 1: held when both
    CIs lie above 1 (the centred member trains faster in both pairs), not held when either
    lies below 1, inconclusive otherwise (a CI that includes 1, or a missing pair)."""
    parts, words = [], []
    for pair in PAIRS:
        r = s["ratios"].get(pair)
        sign = _part(r)
        parts.append(status(sign, 1))
        what = {1: "centred faster", -1: "centred slower", 0: "no measured difference"}[sign]
        words.append(f"{pair}: plain / centred = {fmt_ratio(r)} ({what})")
    return combine(parts), "; ".join(words) + "."


# --------------------------------------------------------------------------- figures


def _median_band(ys: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Median over seeds (axis 0) of each column with a percentile-bootstrap 95% CI."""
    ys = np.asarray(ys, np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, ys.shape[0], (n_boot, ys.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        boot = np.nanmedian(ys[idx], axis=1)
        lo, hi = np.nanquantile(boot, [0.025, 0.975], axis=0)
        return np.nanmedian(ys, 0), lo, hi


STYLE = {"plain": ("C3", "-"), "centred": ("C0", "--")}
LABEL = {
    "sigmoid": {"plain": "sigmoid", "centred": "sigmoid - 1/2"},
    "relu": {"plain": "relu", "centred": "relu - E[relu] (centred)"},
}


def _plot_training(ctx: Context, s: dict, curves: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PAIRS), figsize=(11, 4), layout="constrained")
    for ax, pair in zip(axes, PAIRS, strict=True):
        for m in MEMBERS:
            rows = curves.get(key(pair, m), [])
            if not rows:
                continue
            steps = rows[0]["eval_steps"]
            med, lo, hi = _median_band(np.stack([r["eval_error"] for r in rows]))
            color, ls = STYLE[m]
            lr = s["members"][key(pair, m)]["lr"]
            ax.plot(steps, med, color=color, ls=ls, label=f"{LABEL[pair][m]} (lr {lr:g})")
            ax.fill_between(steps, lo, hi, color=color, alpha=0.2, lw=0)
        ax.axhline(s["target"], color="k", lw=0.8, ls=":", label=f"target {s['target']:g}")
        ax.set(
            xlabel="SGD step",
            ylabel="training error (fraction, eval subset)",
            title=f"{pair} pair (chi_1 = 1, same function at init)",
            ylim=(0, 1),
        )
        ax.legend(fontsize=8)
    fig.suptitle("Median over measurement seeds at each member's tuned lr; band: 95% bootstrap CI")
    return save_figure(ctx, fig, "training.png")


def _plot_loop(ctx: Context, s: dict, zz: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = []
    for metric, fname, ylabel, title in (
        (
            "cos",
            "zigzag.png",
            "cos(update t, update t-1), mean over units",
            "zig-zag, layers 2-4 + head",
        ),
        (
            "diag_saturation_fraction",
            "saturation.png",
            "saturated fraction of (example, unit)",
            f"saturation (|phi'| < {s['saturation_rtol']:g} max |phi'|), layers 2-4",
        ),
    ):
        fig, axes = plt.subplots(1, len(PAIRS), figsize=(11, 4), layout="constrained")
        for ax, pair in zip(axes, PAIRS, strict=True):
            runs = [
                (key(pair, "plain"), "plain", ""),
                (key(pair, "centred"), "centred", ""),
                (f"{key(pair, 'centred')}@plain_lr", "centred", " at the plain lr"),
            ]
            for k, m, extra in runs:
                z = zz.get(k)
                if z is None or (extra and (metric != "cos" or z is zz.get(key(pair, "centred")))):
                    continue  # the same-lr loop only where the tuned lrs differ
                ok = ~np.asarray(z["diverged"], bool)
                arr = np.asarray(z[metric], np.float64)[ok][..., 1:]
                y = _nanmean(arr, -1)  # (S, T): mean over layers 2..
                x = z["steps"] if metric == "cos" else z["diag_steps"]
                med, lo, hi = _median_band(y)
                color, ls = STYLE[m]
                if extra:
                    color, ls = "C2", ":"
                ax.plot(
                    x, med, color=color, ls=ls, label=f"{LABEL[pair][m]}{extra} (lr {z['lr']:g})"
                )
                ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
            if metric == "cos":
                ax.axhline(0, color="k", lw=0.6)
            ax.set(xlabel="SGD step", ylabel=ylabel, title=f"{pair} pair: {title}")
            ax.legend(fontsize=8)
        fig.suptitle(
            "Median over measurement seeds; band: 95% bootstrap CI"
            + ("; each point averages the steps of a block" if metric == "cos" else "")
        )
        figs.append(save_figure(ctx, fig, fname))
    return figs


# --------------------------------------------------------------------------- report


def _ci(c: dict[str, Any] | None, d: int = 3) -> str:
    if not c or c.get("mean") is None:
        return "n/a"
    lo, hi = c["ci"] or (None, None)
    return f"{_f(c['mean'], d)} [{_f(lo, d)}, {_f(hi, d)}]"


def answer_text(s: dict[str, Any]) -> str:
    st, _ = verdict(s)
    bits = []
    for pair in PAIRS:
        if pair not in s["ratios"]:
            continue
        r, z = s["ratios"][pair], s["zigzag"][pair]["plain_lr"]
        mp, mc = s["members"][key(pair, "plain")], s["members"][key(pair, "centred")]
        bits.append(
            f"{LABEL[pair]['plain']} took {fmt_km(mp, s['steps'])} KM median steps to "
            f"{s['target']:g} training error, {LABEL[pair]['centred']} {fmt_km(mc, s['steps'])} "
            f"(paired ratio {fmt_ratio(r)}); at the same lr the mean cosine of successive "
            f"updates was {_ci(z['plain'])} plain vs {_ci(z['centred'])} centred "
            f"(difference {_ci(z['diff'])})"
        )
    sat = []
    for pair in PAIRS:
        p, c = s["saturation"].get(key(pair, "plain")), s["saturation"].get(key(pair, "centred"))
        if p and c:
            sat.append(
                f"{pair} {_ci(p['init'], 2)} at init, {_ci(p['end'], 2)} plain vs "
                f"{_ci(c['end'], 2)} centred at the end of the loop"
            )
    return (
        f"**{st.capitalize()}.** Each pair starts from the same function (chi_1 = 1, the "
        "same saturation at init; only the inputs the weight gradients see differ): "
        + "; ".join(bits)
        + ". A ratio CI above 1 means the centred member was faster; a positive cosine "
        "difference means it zig-zagged less. Saturated share of layers 2-4 (|phi'| < "
        f"{s['saturation_rtol']:g} of its maximum; relu: its zero side): " + "; ".join(sat) + "."
    )


def report(ctx: Context, sp: dict[str, Any], s: dict[str, Any], figs: list[str]) -> dict[str, Any]:
    """REPORT.md and summary.json from the summary (every number in the text comes from it)."""
    budget = s["steps"]
    rows = []
    for pair in PAIRS:
        for m in MEMBERS:
            k = key(pair, m)
            if k not in s["members"]:
                continue
            c = s["members"][k]
            rows.append(
                [
                    LABEL[pair][m],
                    f"{c['lr']:g}" + ("" if c["bracket_closed"] else " (open)"),
                    f"{c['reached']}/{c['n']} ({c['censored']} censored, {c['failed']} failed)",
                    fmt_km(c, budget),
                    _ci(s["saturation"][k]["init"], 2),
                    _ci(s["saturation"][k]["end"], 2),
                ]
            )
    speed = md_table(
        [
            "member",
            "tuned lr",
            "reached",
            "KM median steps [95% CI]",
            "saturated at init (layers 2-4)",
            f"saturated at step {sp['zigzag']['steps']}",
        ],
        rows,
    )
    ratio_rows = [[p, fmt_ratio(r), r["bound"], r["paired"]] for p, r in s["ratios"].items()]
    ratio_table = md_table(["pair", "plain / centred [95% CI]", "bound", "paired"], ratio_rows)
    zrows = []
    for pair, z in s["zigzag"].items():
        same = z["own_lr"]["lr_plain"] == z["own_lr"]["lr_centred"]
        for which, label in (
            ("plain_lr", "tuned lr, the same for both" if same else "same lr (the plain member's)"),
            *([] if same else [("own_lr", "own tuned lr")]),
        ):
            q = z[which]
            zrows.append(
                [
                    pair,
                    label,
                    f"{q['lr_plain']:g} / {q['lr_centred']:g}",
                    _ci(q["plain"]),
                    _ci(q["centred"]),
                    _ci(q["diff"]),
                    ", ".join(_f(x, 2) for x in q["plain"]["per_layer"] or []),
                    ", ".join(_f(x, 2) for x in q["centred"]["per_layer"] or []),
                ]
            )
    zig_table = md_table(
        [
            "pair",
            "lr",
            "lr plain / centred",
            "plain: mean cos [95% CI]",
            "centred",
            "centred - plain (paired)",
            "plain per layer (1..4, head)",
            "centred per layer",
        ],
        zrows,
    )
    crows = []
    for pair, c in s["checks"].items():
        su = s["setup"][pair]
        crows.append(
            [
                pair,
                f"{su['sigma_w']:.4g}",
                f"{su['chi1']:.3g}",
                ", ".join(_f(x, 3) for x in su["offsets"]),
                ", ".join(_f(x, 3) for x in su["offsets_meanfield"]),
                ", ".join(_f(x, 2) for x in c["act_mean"]["centred"]),
                " / ".join(_f(c["same_sign_upper"][m], 2) for m in MEMBERS),
                _f(c["grad_sq_ratio_max_dev"], 2),
            ]
        )
    check_table = md_table(
        [
            "pair",
            "sigma_w (hidden)",
            "chi_1 (theory)",
            "offset c_l (layers 1-4)",
            "mean-field c_l",
            "centred act mean at init",
            "same-sign share, layers 2-4: plain / centred",
            "max |grad_sq centred / plain - 1| at init",
        ],
        crows,
    )
    results_md = (
        "No published numbers for this MLP: the slides (after LeCun et al. 1998, Efficient "
        "BackProp) give the direction only.\n\n"
        "**Setup checks** (at init, offset seeds): the chosen gain, chi_1, the offsets, and "
        "that each pair starts from the same network (the back-propagated gradients agree to "
        "float32 rounding). The same-sign share is the algebraic identity (all-positive inputs "
        "-> every per-example gradient of a unit has one sign), shown as a sanity check only.\n\n"
        + check_table
        + "\n\n**Speed** (measurement seeds, each member at its tuned lr):\n\n"
        + speed
        + "\n\nPaired ratios of KM median steps (> 1: the centred member is faster):\n\n"
        + ratio_table
        + "\n\n**Zig-zag**: mean over units of the cosine between successive SGD updates of a "
        f"unit's incoming weights, averaged over steps 1-{sp['zigzag']['steps']} and over layers "
        "2-4 and the head (whose inputs are activations); per seed, then the mean over seeds "
        "with a seed-bootstrap 95% CI. Layer 1 (its inputs are the data) is a control.\n\n"
        + zig_table
    )
    st, head = verdict(s)
    zp = {p: s["zigzag"][p]["plain_lr"]["diff"] for p in s["zigzag"]}
    verdict_md = (
        f"**{st.capitalize()}.** {head}\n\n"
        "Rule: per pair, the paired bootstrap CI of plain / centred KM median steps; held when "
        "it lies above 1 in both pairs, not held when it lies below 1 in either. Mechanism "
        "(not part of the rule): centred - plain mean successive-update cosine at the same lr, "
        + ", ".join(f"{p} {_ci(d)}" for p, d in zp.items())
        + " (positive: less zig-zag with centred inputs)."
    )
    setup = f"""
MLP {sp["sweep"]["depth"]} x {sp["sweep"]["width"]} on MNIST-1D, plain SGD, batch
{sp["sweep"]["batch_size"]}, {sp["sweep"]["steps"]} steps, zero initial biases. Target:
{sp["sweep"]["target"]:g} training error on the first {sp["sweep"]["eval_size"]} training
examples, every {sp["sweep"]["eval_every"]} steps. Weights: first layer and head N(0, 1/fan_in);
hidden-to-hidden N(0, sigma_w^2 / width) with sigma_w the plain activation's critical gain
(`activations.theory.critical_sigma_w`, chi_1 = 1). Centred member: `act_offset` c_l with
`fold_offset = true`, so its initial biases are b + W c and it computes the plain network's
function at init (same seed, same weights, same minibatches). Offsets: sigmoid 1/2 exactly;
relu E[relu(h_l)] measured at init on seeds {sp["offset_seeds"]} (used nowhere else).
Zig-zag and saturation: a dedicated loop that repeats the harness's training (checked against
`bench.train` in the tests) on the measurement seeds for {sp["zigzag"]["steps"]} steps,
diagnostics every {sp["zigzag"]["every"]} steps on {sp["zigzag"]["diag_size"]} training
examples; saturated: |phi'(h)| < {s["saturation_rtol"]:g} x max |phi'| (sigmoid: |h| > 3.64,
outputs outside [0.026, 0.974]: the unit passes back under a tenth of its best gradient; the
old 1% needed |h| > 5.99 and read 0 for sigmoid at LeCun's gain). The offsets centre each
layer's population mean, not each unit's: a unit's own mean output stays whatever its weights
make it (at sigma_w = 10 the plain sigmoid net gives each unit of layers 2.. a random mean
pre-activation of std ~5).

""" + "\n\n".join(f"**{k}**: " + protocol_md(b) for k, b in s["protocol"].items())
    claim = """
The seed's slides: sigmoid outputs are all positive, so for each example the gradients of all
the weights into a unit of the next layer share one sign, and SGD can only move those weights
all up or all down together: it zig-zags and trains slower (LeCun et al. 1998, Efficient
BackProp, sec. 4.3: centre the inputs of every layer); tanh, being zero-centred, does not.
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
        answer=answer_text(s),
    )


# --------------------------------------------------------------------------- run


def _cached(ctx: Context, name: str, what: dict[str, Any], compute: Any) -> dict[str, Any]:
    """``compute()`` (a dict of arrays, lists and numbers), stored once under
    ``<out_dir>/runs/cache/<name>-<hash of what>.npz`` so a rerun rebuilds the report from
    files instead of repeating the loops."""
    import hashlib
    import io

    from bench import results

    digest = hashlib.sha256(results.to_json(what, sort_keys=True).encode()).hexdigest()[:10]
    path = ctx.out_dir / "runs" / "cache" / f"{name.replace('/', '-')}-{digest}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
        return {k: (v.tolist() if k in ("diverged", "seeds", "lr") else v) for k, v in out.items()}
    out = compute()
    buf = io.BytesIO()
    arrays: dict[str, Any] = {k: np.asarray(v) for k, v in out.items()}
    np.savez(buf, **arrays)
    results.atomic_write_bytes(path, buf.getvalue())
    return out


def _offsets_and_checks(ctx: Context, sp: dict[str, Any], n_in: int) -> tuple[dict, dict]:
    """Per pair its gain, theory chi_1 and offsets; per member its at-init diagnostics."""
    from activations import theory
    from bench import diagnostics

    setup: dict[str, Any] = {}
    init: dict[str, Any] = {}
    seeds = sp["offset_seeds"]
    for pair in PAIRS:
        g = gain(pair)
        base = member_config(sp, pair, "plain", n_in=n_in, offsets=0.0, sigma_w=g)
        base = {
            **base,
            "saturation_rtol": sp["saturation_rtol"],
            "diag_size": sp["zigzag"]["diag_size"],
        }
        plain = _cached(
            ctx,
            f"init-{pair}-plain",
            {"cfg": base, "seeds": seeds},
            lambda b=base: diagnostics.at_init(b, seeds=seeds),
        )
        q = plain["q"].mean(0)
        if pair == "sigmoid":  # E sigmoid(h) = 1/2 for symmetric h: exact
            offs = [0.5] * sp["sweep"]["depth"]
            mf = offs
        else:
            offs = [float(x) for x in plain["act_mean"].mean(0)]
            mf = [float(math.sqrt(x / (2 * math.pi))) for x in q]
        cen = member_config(sp, pair, "centred", n_in=n_in, offsets=offs, sigma_w=g)
        cen = {
            **cen,
            "saturation_rtol": sp["saturation_rtol"],
            "diag_size": sp["zigzag"]["diag_size"],
        }
        init[key(pair, "plain")] = plain
        init[key(pair, "centred")] = _cached(
            ctx,
            f"init-{pair}-centred",
            {"cfg": cen, "seeds": seeds},
            lambda c=cen: diagnostics.at_init(c, seeds=seeds),
        )
        setup[pair] = {
            "sigma_w": g,
            "chi1": float(theory.chi1(pair, g, 0.0)),
            "offsets": offs,
            "offsets_meanfield": mf,
            "offset_source": "exact" if pair == "sigmoid" else "measured at init",
        }
    return setup, init


def run(ctx: Context) -> dict[str, Any]:
    from bench import data as bench_data

    sp = spec(ctx.size, ctx.data_dir)
    ds = bench_data.load(sp["sweep"]["dataset"], data_dir=ctx.data_dir)
    n_in = int(np.prod(np.asarray(ds.x_train).shape[1:]))
    setup, init = _offsets_and_checks(ctx, sp, n_in)
    tuned: dict[str, dict[str, Any]] = {}
    tuned_objs: dict[str, Any] = {}
    cfgs: dict[str, dict[str, Any]] = {}
    for pair in PAIRS:
        for m in MEMBERS:
            k = key(pair, m)
            cfgs[k] = member_config(
                sp,
                pair,
                m,
                n_in=n_in,
                offsets=setup[pair]["offsets"],
                sigma_w=setup[pair]["sigma_w"],
            )
            t = tuned_sweep(ctx, cfgs[k])
            tuned_objs[k] = t
            tuned[k] = {"records": t.records, "protocol": t.protocol}
    seeds = list(sp["sweep"]["seed"])
    zz: dict[str, Any] = {}
    rtol = sp["saturation_rtol"]
    for pair in PAIRS:
        p, c = key(pair, "plain"), key(pair, "centred")
        lr_p = tuned[p]["protocol"]["settings"][0]["lr"]
        lr_c = tuned[c]["protocol"]["settings"][0]["lr"]
        for k, lr in ((p, lr_p), (c, lr_c), (f"{c}@plain_lr", lr_p)):
            if k.endswith("@plain_lr") and lr_c == lr_p:  # the same loop: reuse it
                zz[k] = zz[c]
                continue
            what = {"cfg": cfgs[k.split("@")[0]], "lr": lr, "seeds": seeds, "loop": sp["zigzag"]}
            zz[k] = _cached(
                ctx,
                f"zigzag-{k}",
                what,
                lambda k=k, lr=lr: zigzag(cfgs[k.split("@")[0]], lr, seeds, sp["zigzag"], rtol),
            )
    s = analyse(tuned, zz, init, setup, sp)
    s["run_dirs"] = {k: str(t.root) for k, t in tuned_objs.items()}
    curves: dict[str, list[dict[str, np.ndarray]]] = {}
    for k, t in tuned_objs.items():
        for r, cv in measured_curves(t):
            if not r.get("diverged"):
                curves.setdefault(k, []).append(cv)
    figs = [_plot_training(ctx, s, curves), *_plot_loop(ctx, s, zz)]
    for t in tuned_objs.values():
        slim_stages(t, keep=SLIM_KEEP)
    return report(ctx, sp, s, figs)

"""Per-layer gradient attenuation of a random deep MLP at initialisation, against mean-field theory.

The network (the same conventions as :mod:`activations.theory`): the input ``x ~ N(0, q0 I)``
of dimension ``width`` is treated as the layer-0 pre-activation, and for ``l = 1 .. depth``::

    h_l = phi(h_{l-1}) W_l + b_l + eps_l,   W_l ~ N(0, sigma_w^2 / width),  b_l ~ N(0, sigma_b^2)

so ``q_l = E[h_l^2]`` follows the length map from ``q_0 = q0``; starting at ``q0 = q*`` removes
the forward transient. ``eps_l`` is a stacked array of zeros: ``jax.grad`` of the loss with
respect to it is the gradient with respect to every layer's pre-activations at once.

The loss is ``sum_b <u_b, h_depth,b>`` with a fixed ``u ~ N(0, I)`` drawn independently of the
net: the top gradient is ``u`` (mean square 1), and, being independent of the weights, it obeys
the mean-field assumption that back-propagated gradients do not correlate with the forward
weights (``0.5 ||h_depth||^2`` would make the top gradient ``h_depth = phi(h) W_depth + ...``
and bias the first backward step through ``W_depth^T W_depth``).

Measured per seed and layer: ``q_l`` (mean of ``h_l^2`` over batch and units), ``g_l`` (mean of
``(dloss/dh_l)^2``) and the attenuation ``g_l / g_{l+1}``, predicted to be ``chi(q_l)``.

``python -m bench attenuation --activation tanh --depth 50 ...`` (or ``python -m
bench.attenuation ...``) prints the per-layer table and writes
``<out>/attenuation/<activation>-d<depth>-w<width>-sw<sigma_w>-sb<sigma_b>/`` with
``result.json`` (arguments, environment and git commit, summary, table), ``data.npz`` (per seed
x per layer arrays and the predictions) and ``attenuation.png``.
"""

from __future__ import annotations

import argparse
import functools
import io
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import activations
from activations import theory
from bench import cli, results

Activation = str | Callable[..., Any]

CONVERGED_RTOL = 0.01  # a layer counts as at the fixed point once |q_l - q*| <= 1% q*


def _phi(act: Activation) -> Callable[..., Any]:
    return activations.get(act) if isinstance(act, str) else act


@functools.lru_cache(maxsize=8)
def _normals(depth: int, width: int, batch: int) -> Callable[..., Any]:
    def draw(key):
        kx, ku, kw, kb = jax.random.split(key, 4)
        return (
            jax.random.normal(kx, (batch, width)),
            jax.random.normal(ku, (batch, width)),
            jax.random.normal(kw, (depth, width, width)),
            jax.random.normal(kb, (depth, 1, width)),
        )

    return jax.jit(draw)


@functools.lru_cache(maxsize=32)
def _compiled(act: Activation, depth: int, width: int) -> Callable[..., Any]:
    phi = _phi(act)

    def one_point(normals, sigma_w, sigma_b, q0):
        x, u, zw, zb = normals
        ws, bs = sigma_w / math.sqrt(width) * zw, sigma_b * zb

        def loss(eps):
            def layer(h, wbe):
                w, b, e = wbe
                h = phi(h) @ w + b + e
                return h, h

            top, hs = lax.scan(layer, jnp.sqrt(q0) * x, (ws, bs, eps))  # compile flat in depth
            return jnp.sum(top * u), hs

        grads, hs = jax.grad(loss, has_aux=True)(jnp.zeros((depth, *x.shape)))
        return jnp.mean(hs**2, axis=(1, 2)), jnp.mean(grads**2, axis=(1, 2))

    return jax.jit(one_point)


def measure(
    act: Activation,
    depth: int,
    width: int,
    sigma_w: Any,
    sigma_b: Any,
    *,
    seeds: int = 8,
    batch: int = 128,
    q0: Any = 1.0,
    key: int = 0,
) -> dict[str, np.ndarray]:
    """Measure one random net per seed at initialisation (float32).

    Returns arrays with one row per seed: ``q`` and ``grad_sq`` of shape ``(seeds, depth)``
    for layers ``1 .. depth``, and ``attenuation = grad_sq[:, :-1] / grad_sq[:, 1:]`` of shape
    ``(seeds, depth - 1)`` for layers ``1 .. depth - 1``.

    ``sigma_w``, ``sigma_b`` and ``q0`` may also be 1-d sequences of P points (broadcast
    together); every array then gets a leading axis P. The points share each seed's standard
    normal draws, scaled by their own sigmas (common random numbers): on CPU drawing the
    weights costs more than running the net. Seeds and points run one after another through
    one compiled function per (activation, depth, width, batch): vmap over them buys nothing
    on CPU, multiplies the memory and would compile once per number of points.
    """
    sw, sb, q = np.broadcast_arrays(*(np.asarray(v, np.float32) for v in (sigma_w, sigma_b, q0)))
    if depth < 2 or width < 1 or batch < 1 or seeds < 1 or sw.ndim > 1:
        raise ValueError(
            f"need depth >= 2, width, batch, seeds >= 1, 1-d sigmas; got {depth}, "
            f"{width}, {batch}, {seeds}, shape {sw.shape}"
        )
    if not (np.all(sw >= 0) and np.all(sb >= 0) and np.all(q >= 0)):
        raise ValueError(f"need sigma_w, sigma_b, q0 >= 0; got {sigma_w}, {sigma_b}, {q0}")
    draw, net = _normals(depth, width, batch), _compiled(act, depth, width)
    points = list(zip(np.atleast_1d(sw), np.atleast_1d(sb), np.atleast_1d(q), strict=True))
    qa, ga = np.empty((2, len(points), seeds, depth))
    for i, k in enumerate(jax.random.split(jax.random.key(key), seeds)):
        normals = draw(k)
        for j, point in enumerate(points):
            qa[j, i], ga[j, i] = net(normals, *point)
    if sw.ndim == 0:
        qa, ga = qa[0], ga[0]
    return {"q": qa, "grad_sq": ga, "attenuation": ga[..., :-1] / ga[..., 1:]}


def _gmean(x: np.ndarray, axis: Any = None) -> Any:
    return np.exp(np.mean(np.log(x), axis=axis))


def default_q0(act: Activation, sigma_w: float, sigma_b: float) -> float:
    """``q*`` where it is finite and positive (no transient), else 1."""
    q = theory.q_star(act, sigma_w, sigma_b)
    return q if math.isfinite(q) and q > 0 else 1.0


def default_skip(prediction: theory.LayerPrediction, q_star: float) -> int:
    """Leading layers left out of the summary: those before the predicted ``q_l`` is within 1%
    of ``q*`` (none when ``q0 = q*``); half the net when it never gets there or ``q* = inf``,
    where the factor still drifts towards its large-q limit."""
    depth = len(prediction.q)
    if math.isfinite(q_star) and q_star > 0:
        near = np.flatnonzero(np.abs(prediction.q - q_star) <= CONVERGED_RTOL * q_star)
        if near.size and near[0] < depth - 1:
            return int(near[0])
    return depth // 2


def compare(
    act: Activation,
    depth: int,
    width: int,
    sigma_w: Any,
    sigma_b: Any,
    *,
    seeds: int = 8,
    batch: int = 128,
    q0: Any = None,
    skip: int | None = None,
    key: int = 0,
) -> Any:
    """Measure (see :func:`measure`) and set the result against the mean-field prediction.

    ``q0=None`` starts at ``q*`` (:func:`default_q0`); ``skip=None`` uses
    :func:`default_skip`. Returns ``{"theory", "summary", "layers", "raw", "prediction"}``:

    * ``layers``: per layer ``1 .. depth`` (attenuation entries are NaN for the top layer):
      measured ``q`` (mean over seeds), predicted ``q_l``, measured ``grad_sq`` (median, min,
      max over seeds), predicted ``grad_sq`` (relative to the top layer, whose expected value
      is exactly 1), measured attenuation (geometric mean, min, max over seeds), predicted
      ``chi(q_l)`` and their ratio.
    * ``summary``: the geometric mean of the attenuation over layers ``skip + 1 .. depth - 1``
      and all seeds (and the min / max of the per-seed geometric means), the same mean of the
      predicted ``chi(q_l)`` (the finite-depth prediction) and ``chi_1``.

    With sequences for ``sigma_w``, ``sigma_b`` (and ``q0``, None entries allowed), one
    measurement covers all the points (see :func:`measure`) and a list of dicts comes back.
    """
    many = any(np.ndim(v) > 0 for v in (sigma_w, sigma_b)) or isinstance(q0, list | tuple)
    given: tuple[Any, ...] = (sigma_w, sigma_b, q0 if many else 0)
    n = max(len(v) if np.ndim(v) > 0 else 1 for v in given)
    sw, sb = (np.broadcast_to(np.asarray(v, float), (n,)) for v in (sigma_w, sigma_b))
    q0s = list(q0) if isinstance(q0, list | tuple) else [q0] * n
    if len(q0s) != n:
        raise ValueError(f"q0 has {len(q0s)} entries for {n} points")
    q0s = [
        default_q0(act, w, b) if q is None else float(q)
        for w, b, q in zip(sw, sb, q0s, strict=True)
    ]
    raw = measure(act, depth, width, sw, sb, seeds=seeds, batch=batch, q0=q0s, key=key)
    out = [
        _compare_one(act, depth, float(w), float(b), q, skip, {k: v[i] for k, v in raw.items()})
        for i, (w, b, q) in enumerate(zip(sw, sb, q0s, strict=True))
    ]
    return out if many else out[0]


def _compare_one(
    act: Activation,
    depth: int,
    sigma_w: float,
    sigma_b: float,
    q0: float,
    skip: int | None,
    raw: dict[str, np.ndarray],
) -> dict[str, Any]:
    pred = theory.predict_layers(act, sigma_w, sigma_b, depth, q0)
    qs = theory.q_star(act, sigma_w, sigma_b, q0=q0)
    c1 = theory.chi1(act, sigma_w, sigma_b, q0=q0)
    skip = default_skip(pred, qs) if skip is None else int(skip)
    if not 0 <= skip < depth - 1:
        raise ValueError(f"skip must be in [0, depth - 1), got {skip}")
    att = raw["attenuation"]
    nan = np.full(1, np.nan)
    att_g = np.append(_gmean(att, axis=0), nan)
    used = slice(skip, depth - 1)
    per_seed = _gmean(att[:, used], axis=1)
    measured, predicted = float(_gmean(att[:, used])), float(_gmean(pred.chi[used]))
    layers = {
        "layer": np.arange(1, depth + 1),
        "q_measured": raw["q"].mean(axis=0),
        "q_predicted": pred.q,
        "grad_sq_median": np.median(raw["grad_sq"], axis=0),
        "grad_sq_min": raw["grad_sq"].min(axis=0),
        "grad_sq_max": raw["grad_sq"].max(axis=0),
        "grad_sq_predicted": pred.grad,
        "attenuation": att_g,
        "attenuation_min": np.append(att.min(axis=0), nan),
        "attenuation_max": np.append(att.max(axis=0), nan),
        "chi_predicted": pred.chi,
        "ratio": att_g / pred.chi,
    }
    summary = {
        "skip": skip,
        "layers_used": [skip + 1, depth - 1],
        "measured_gmean": measured,
        "measured_gmean_min": float(per_seed.min()),
        "measured_gmean_max": float(per_seed.max()),
        "predicted_gmean": predicted,
        "chi1": c1,
        "rel_err_vs_chi1": measured / c1 - 1,
        "rel_err_vs_predicted": measured / predicted - 1,
    }
    th = {
        "q0": q0,
        "q_star": qs,
        "chi1": c1,
        "depth_scale": theory.depth_scale(act, sigma_w, sigma_b, q0=q0),
    }
    return {"theory": th, "summary": summary, "layers": layers, "raw": raw, "prediction": pred}


# --------------------------------------------------------------------------------------------
# Command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--activation", default="tanh", help="registered activation name")
    p.add_argument("--depth", type=cli.at_least(2), default=50, help="hidden layers (default 50)")
    p.add_argument(
        "--width", type=cli.at_least(1), default=512, help="units per layer (default 512)"
    )
    p.add_argument(
        "--sigma-w",
        type=cli.at_least(0, float),
        default=1.5,
        help="weight scale: Var W = s^2/fan_in",
    )
    p.add_argument(
        "--sigma-b", type=cli.at_least(0, float), default=0.05, help="bias standard deviation"
    )
    p.add_argument("--seeds", type=cli.at_least(1), default=8, help="independent nets (default 8)")
    p.add_argument(
        "--batch", type=cli.at_least(1), default=256, help="inputs per net (default 256)"
    )
    p.add_argument(
        "--q0",
        type=cli.at_least(0, float),
        default=None,
        help="input second moment (default: q* when finite, else 1)",
    )
    p.add_argument(
        "--skip",
        type=cli.at_least(0),
        default=None,
        help="leading layers left out of the summary (default: until q_l is within "
        "1%% of q*; half the net if never)",
    )
    p.add_argument("--key", type=int, default=0, help="PRNG seed (default 0)")
    p.add_argument("--out", default="results", help="results root (default: results)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``attenuation`` subcommand to an argparse ``add_subparsers()`` object."""
    p = subparsers.add_parser("attenuation", help=_HELP, description=_HELP)
    add_arguments(p)
    p.set_defaults(func=main)
    return p


def run_dir(
    out: str | Path, activation: str, depth: int, width: int, sigma_w: float, sigma_b: float
) -> Path:
    tag = f"{activation}-d{depth}-w{width}-sw{sigma_w:g}-sb{sigma_b:g}"
    return Path(out) / "attenuation" / tag


def _fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)


def format_table(res: dict[str, Any]) -> str:
    L, s, th = res["layers"], res["summary"], res["theory"]
    lines = [
        f"theory: q0 = {_fmt(th['q0'])}, q* = {_fmt(th['q_star'])}, chi_1 = {th['chi1']:.5f}, "
        f"xi = {_fmt(th['depth_scale'])}",
        f"{'layer':>5} {'q meas':>10} {'q pred':>10} {'atten (gmean)':>13} "
        f"{'[min, max] over seeds':>22} {'chi(q_l)':>9} {'ratio':>7}",
    ]
    for i, layer in enumerate(L["layer"]):
        att = L["attenuation"][i]
        spread = (
            f"[{L['attenuation_min'][i]:.4f}, {L['attenuation_max'][i]:.4f}]"
            if math.isfinite(att)
            else ""
        )
        lines.append(
            f"{layer:5d} {L['q_measured'][i]:10.4g} {L['q_predicted'][i]:10.4g} "
            f"{att:13.4f} {spread:>22} {L['chi_predicted'][i]:9.4f} {L['ratio'][i]:7.4f}"
        )
    a, b = s["layers_used"]
    lines.append(
        f"geometric mean over layers {a}-{b}: measured {s['measured_gmean']:.4f} "
        f"(per-seed {s['measured_gmean_min']:.4f} .. {s['measured_gmean_max']:.4f}), "
        f"finite-depth prediction {s['predicted_gmean']:.4f} "
        f"({100 * s['rel_err_vs_predicted']:+.2f}%), chi_1 {s['chi1']:.4f} "
        f"({100 * s['rel_err_vs_chi1']:+.2f}%)"
    )
    return "\n".join(lines)


def plot(res: dict[str, Any], title: str) -> bytes:
    """PNG: mean squared gradient per layer (median, min-max over seeds, theory) and the
    per-layer attenuation against chi(q_l)."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, Agg via savefig

    L = res["layers"]
    layer = L["layer"]
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.fill_between(
        layer, L["grad_sq_min"], L["grad_sq_max"], alpha=0.3, label="min-max over seeds"
    )
    ax1.plot(layer, L["grad_sq_median"], "o-", ms=3, label="measured median")
    ax1.plot(layer, L["grad_sq_predicted"], "k--", label="mean field")
    ax1.set(
        yscale="log", xlabel="layer l", ylabel="mean squared dloss/dh_l", title="gradient per layer"
    )
    ax1.legend(fontsize=8)
    a = L["attenuation"][:-1]
    err = np.stack([a - L["attenuation_min"][:-1], L["attenuation_max"][:-1] - a])
    ax2.errorbar(
        layer[:-1], a, yerr=err, fmt="o", ms=3, capsize=2, label="measured (gmean, min-max)"
    )
    ax2.plot(layer, L["chi_predicted"], "k--", label="chi(q_l)")
    ax2.axhline(res["theory"]["chi1"], color="r", lw=0.8, label="chi_1")
    s = res["summary"]
    ax2.axvspan(
        s["layers_used"][0] - 0.5,
        s["layers_used"][1] + 0.5,
        color="g",
        alpha=0.07,
        label="summary layers",
    )
    ax2.set(xlabel="layer l", ylabel="g_l / g_{l+1}", title="attenuation per layer")
    ax2.legend(fontsize=8)
    fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def main(args: argparse.Namespace) -> int:
    """Run the measurement, print the table, write ``result.json``, ``data.npz`` and the PNG."""
    try:
        activations.get(args.activation)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        res = compare(
            args.activation,
            args.depth,
            args.width,
            args.sigma_w,
            args.sigma_b,
            seeds=args.seeds,
            batch=args.batch,
            q0=args.q0,
            skip=args.skip,
            key=args.key,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - t0
    print(format_table(res))
    out = run_dir(args.out, args.activation, args.depth, args.width, args.sigma_w, args.sigma_b)
    arguments = {k: v for k, v in vars(args).items() if k in _ARG_NAMES}
    meta = {
        "arguments": arguments,
        "created": results.now(),
        "wall_seconds": wall,
        **results.environment(),
    }
    clean = lambda d: {
        k: (results.clean_float(v) if isinstance(v, float) else v) for k, v in d.items()
    }
    layers = {k: [results.clean_float(x) for x in v] for k, v in res["layers"].items()}
    layers["layer"] = res["layers"]["layer"].tolist()
    results.write_json(
        out / "result.json",
        {
            "meta": meta,
            "theory": clean(res["theory"]),
            "summary": clean(res["summary"]),
            "layers": layers,
        },
    )
    buf = io.BytesIO()
    np.savez(
        buf, **res["raw"], **{f"predicted_{k}": v for k, v in res["prediction"]._asdict().items()}
    )
    results.atomic_write_bytes(out / "data.npz", buf.getvalue())
    title = (
        f"{args.activation}, depth {args.depth}, width {args.width}, sigma_w {args.sigma_w:g}, "
        f"sigma_b {args.sigma_b:g}, {args.seeds} seeds"
    )
    results.atomic_write_bytes(out / "attenuation.png", plot(res, title))
    print(f"wrote {out} ({wall:.1f} s)")
    return 0


_HELP = "per-layer gradient attenuation at init vs mean-field theory"
_ARG_NAMES = (
    "activation",
    "depth",
    "width",
    "sigma_w",
    "sigma_b",
    "seeds",
    "batch",
    "q0",
    "skip",
    "key",
    "out",
)

cli.register("attenuation", _HELP, add_arguments, main)


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m bench.attenuation")
    _sub = _parser.add_subparsers(dest="command")
    add_parser(_sub)
    _argv = sys.argv[1:]
    raise SystemExit(main(_parser.parse_args(["attenuation", *_argv])))

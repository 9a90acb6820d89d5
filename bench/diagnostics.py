"""Per-layer diagnostics of a network: gradients, pre-activations, dead and saturated units.

``measure(static, params, hp, x, y)`` evaluates one network on a fixed set of examples and
returns one value per hidden layer (``L = static.depth``: the MLP's hidden layers, the CNN's
conv layers) for each name in ``METRICS``:

- ``grad_norm_w``, ``grad_norm_b``: L2 norms of ``dL/dW_l`` and ``dL/db_l``, ``L`` the mean
  cross-entropy over the examples (the training loss).
- ``q``: mean over examples and units of the squared pre-activation ``h_l``.
- ``grad_sq``: mean over examples and units of ``(d loss_b / d h_l)^2``, the gradient of each
  example's own loss with respect to the pre-activation. It is obtained by adding a zero
  perturbation to every pre-activation (``bench.models.perturbation``) and differentiating with
  respect to it, so the scanned MLP layers cost one backward pass, not one per layer.
- ``attenuation``: ``grad_sq[l] / grad_sq[l + 1]`` for ``l < L - 1``; its last entry is NaN
  (padding, so every metric has L entries). Mean-field theory predicts ``chi(q_l)``
  (``activations.theory.chi``) for the MLP's hidden-to-hidden layers. Where ``grad_sq``
  underflows to 0 in float32 (a vanished gradient) the ratio is NaN or inf; records store
  both as null.
- ``dead_fraction``: fraction of units whose activation derivative is exactly 0 on *every*
  example (dead for the data, not for one batch). A unit is a neuron of the MLP, a
  (layer, channel) of the CNN (so every position of every example must be 0).
- ``saturation_fraction``: fraction of (unit, example) pairs (and positions) with
  ``|phi'(h)| < saturation_rtol x activations.info(name).max_derivative`` (at the default
  hyperparameter; the config's ``saturation_rtol``, default 1%); relu's zero side counts as
  saturated.
- ``sparsity``: fraction of exact zeros in the raw activations ``phi(h_l)`` (before any
  ``act_offset``).
- ``same_sign_fraction``: among (example, unit) pairs whose per-example weight gradient is not
  zero, the fraction whose incoming weight gradients all share one sign. For a dense layer the
  per-example gradient of unit j is ``a * delta_j`` (``a`` the layer's input), so this happens
  iff the nonzero inputs of the example all have one sign: 1 after an all-positive activation
  (sigmoid, relu), near 0 after a zero-centred one (tanh). For a conv layer the per-example
  gradient sums over positions and is computed explicitly. NaN when no gradient is nonzero.
- ``act_mean``, ``act_var``: mean and variance of the activations ``phi(h_l) - act_offset``
  (what the next layer sees) over examples, units and positions (the SELU fixed point is 0
  and 1).

During training (``diagnostics = true`` in a sweep) ``bench.train`` measures them at step 0
and every ``diag_every`` steps on the first ``min(diag_size, eval_size)`` training examples and
stacks them by the scan: ``diag_<metric>`` of shape ``(D, L)`` per configuration.

``at_init(spec, seeds=...)`` measures freshly initialised networks built from a sweep-like
dict, outside any sweep (the parameters are those ``bench.train`` starts from for that seed).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import activations
from bench import models
from bench.config import GroupStatic

METRICS = (
    "grad_norm_w",
    "grad_norm_b",
    "q",
    "grad_sq",
    "attenuation",
    "dead_fraction",
    "saturation_fraction",
    "sparsity",
    "same_sign_fraction",
    "act_mean",
    "act_var",
)
SATURATION_RTOL = 0.01  # default of the config's saturation_rtol


def _one_sign(g: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """(some entry nonzero, nonzero entries all one sign) along ``axis``."""
    pos, neg = jnp.any(g > 0, axis=axis), jnp.any(g < 0, axis=axis)
    return pos | neg, pos ^ neg


def _same_sign_counts(a: jax.Array, delta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(same-sign pairs, pairs with a nonzero weight gradient) over (example, unit)."""
    if a.ndim == 2:  # dense: the gradient of unit j is a_b * delta_bj
        some, one = _one_sign(a, axis=1)
        nz = (delta != 0) & some[:, None]
        return jnp.sum(nz & one[:, None]), jnp.sum(nz)
    nd = a.ndim - 2  # conv: per-example gradient = sum over positions of patch x delta
    dims = ("NWC", "WIO", "NWC") if nd == 1 else ("NHWC", "HWIO", "NHWC")

    def per_example(ad):
        a, d = ad
        patches = lax.conv_general_dilated_patches(
            a[None], (models.KERNEL,) * nd, (1,) * nd, "SAME", dimension_numbers=dims
        )
        g = jnp.einsum("...i,...j->ij", patches[0], d)  # (fan_in, channels)
        nz, one = _one_sign(g, axis=0)
        return jnp.sum(nz & one), jnp.sum(nz)

    # A few examples at a time: the patches of the whole set would not fit (CIFAR, 512
    # examples, 32 channels: 1.6 GB).
    same, nonzero = lax.map(per_example, (a, delta), batch_size=16)
    return jnp.sum(same), jnp.sum(nonzero)


def _layer(phi, max_derivative, rtol, p, g, lay, gh, hp, n):
    """Scalars of one hidden layer: its params p, their gradients g, its trace lay, the
    gradient gh of the mean loss with respect to its pre-activation, n examples; |phi'| below
    rtol x max_derivative is saturated."""
    h, post = lay["pre"], lay["post"]
    raw, vjp = jax.vjp(lambda h: phi(h, p, hp), h)  # elementwise: a vjp of ones is phi'(h)
    (dphi,) = vjp(jnp.ones_like(h))
    per_unit = tuple(range(h.ndim - 1))  # examples and positions; the last axis is the unit
    same, nonzero = _same_sign_counts(lay["input"], gh)
    return {
        "grad_norm_w": jnp.sqrt(jnp.sum(g["w"] ** 2)),
        "grad_norm_b": jnp.sqrt(jnp.sum(g["b"] ** 2)),
        "q": jnp.mean(h**2),
        "grad_sq": jnp.mean((n * gh) ** 2),  # n * d(mean loss) = d(own loss) per example
        "dead_fraction": jnp.mean(jnp.all(dphi == 0, axis=per_unit)),
        "saturation_fraction": jnp.mean(jnp.abs(dphi) < rtol * max_derivative),
        "sparsity": jnp.mean(raw == 0),
        "same_sign_fraction": jnp.where(nonzero > 0, same / jnp.maximum(nonzero, 1), jnp.nan),
        "act_mean": jnp.mean(post),
        "act_var": jnp.var(post),
    }


def make_measure(static: GroupStatic, in_shape: tuple[int, ...], num_classes: int):
    """``measure(params, hp, x, y) -> {metric: (L,) array}``, traceable (used inside the scan)."""
    model = models.make_model(static, in_shape, num_classes)
    max_derivative = float(activations.info(static.activation).max_derivative)
    layer = functools.partial(_layer, model.phi, max_derivative, static.saturation_rtol)

    def measure(params, hp, x, y):
        def loss(params, eps):
            logits, layers = model.trace(params, x, hp, eps)
            losses = activations.softmax_cross_entropy_with_integer_labels(logits, y)
            return jnp.mean(losses), layers

        eps = models.perturbation(model, params, x, hp)
        (gp, gh), layers = jax.grad(loss, argnums=(0, 1), has_aux=True)(params, eps)
        n = x.shape[0]
        if static.model == "mlp":
            parts = [
                jax.tree.map(
                    lambda v: v[None],
                    layer(params["first"], gp["first"], layers["first"], gh["first"], hp, n),
                )
            ]
            if static.depth > 1:  # the stacked layers, vmapped: the program is flat in depth

                def one(p, g, lay, e):
                    return layer(p, g, lay, e, hp, n)

                parts.append(
                    jax.vmap(one)(params["hidden"], gp["hidden"], layers["hidden"], gh["hidden"])
                )
        else:
            parts = [
                jax.tree.map(lambda v: v[None], layer(p, g, lay, e, hp, n))
                for p, g, lay, e in zip(params["convs"], gp["convs"], layers, gh, strict=True)
            ]
        out = {k: jnp.concatenate([part[k] for part in parts]) for k in parts[0]}
        g2 = out["grad_sq"]
        out["attenuation"] = jnp.concatenate([g2[:-1] / g2[1:], jnp.full((1,), jnp.nan)])
        return {k: out[k].astype(jnp.float32) for k in METRICS}

    return measure


@functools.lru_cache(maxsize=16)
def _jitted(static: GroupStatic, in_shape: tuple[int, ...], num_classes: int):
    return jax.jit(make_measure(static, in_shape, num_classes))


def _hp(hp: Mapping[str, Any]) -> dict[str, jax.Array]:
    return {
        k: jnp.asarray(np.float32(np.nan if hp.get(k) is None else hp[k])) for k in models.HP_KEYS
    }


def measure(
    static: GroupStatic,
    params: Any,
    hp: Mapping[str, Any],
    x: Any,
    y: Any,
    *,
    num_classes: int | None = None,
) -> dict[str, np.ndarray]:
    """Every metric of ``METRICS`` for one network on examples ``(x, y)``: arrays of shape (L,).

    ``params`` and ``hp`` as in ``bench.models`` (``hp``: ``init_scale``, ``bias_init``,
    ``slope``; only ``slope`` is read). ``num_classes`` defaults to the head's output size.
    """
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    if num_classes is None:
        num_classes = int(params["head"]["b"].shape[-1])
    fn = _jitted(static, tuple(x.shape[1:]), num_classes)
    return {k: np.asarray(v) for k, v in fn(params, _hp(hp), x, y).items()}


def static_from_spec(spec: Mapping[str, Any]) -> tuple[GroupStatic, dict[str, Any], Any]:
    """(static, dynamic values, sweep config) of a sweep-like dict with one configuration per
    group axis; ``seed`` is ignored (``at_init`` takes the seeds)."""
    from bench import config

    spec = {k: v for k, v in spec.items() if k not in ("seed", "lr")}
    cfg = config.parse({"experiment": "diagnostics", **spec})
    grid = config.expand(cfg)
    if len(grid) != 1 or len(grid[0][1]) != 1:
        raise ValueError("spec: at_init measures one configuration; give single axis values")
    static, (dyn,) = grid[0]
    return static, dyn, cfg


def at_init(
    spec: Mapping[str, Any], *, seeds: int | Sequence[int], dataset: Any = None
) -> dict[str, np.ndarray]:
    """``METRICS`` of freshly initialised networks: arrays of shape (seeds, L).

    ``spec`` is a sweep-like dict (model, activation, depth, width, channels, init,
    init_scale, bias_init, slope, dataset, data, diag_size, eval_size ...; each a single
    value). ``seeds`` is a count (seeds 0 .. n-1) or a list of seeds; seed s gives the
    parameters ``bench.train`` starts from with seed s, so these are the ``diag_*`` values at
    step 0 of a sweep. The examples are the first ``min(diag_size, eval_size)`` training
    examples of ``dataset``: a ``bench.data.Dataset``, or None to load ``spec``'s dataset.
    """
    from bench import data as bench_data

    static, dyn, cfg = static_from_spec(spec)
    if dataset is None:
        dataset = bench_data.load(static.dataset, data_dir=cfg.data_dir, **cfg.data)
    n = min(static.diag_size, static.eval_size)
    x = jnp.asarray(np.asarray(dataset.x_train[:n], np.float32))
    y = jnp.asarray(np.asarray(dataset.y_train[:n], np.int32))
    num_classes = int(dataset.num_classes)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    fn = _init_and_measure(static, tuple(x.shape[1:]), num_classes)
    hp = _hp(dyn)
    rows = [fn(jax.random.PRNGKey(s), hp, x, y) for s in seed_list]
    return {k: np.stack([np.asarray(r[k]) for r in rows]) for k in METRICS}


@functools.lru_cache(maxsize=16)
def _init_and_measure(static: GroupStatic, in_shape: tuple[int, ...], num_classes: int):
    model = models.make_model(static, in_shape, num_classes)
    fn = make_measure(static, in_shape, num_classes)

    def run(key, hp, x, y):
        k_init, _ = jax.random.split(key)  # the split bench.train makes
        return fn(model.init(k_init, hp), hp, x, y)

    return jax.jit(run)


__all__ = ["METRICS", "at_init", "make_measure", "measure", "static_from_spec"]

"""Models as pure functions over pytrees: ``init(key, hp) -> params``, ``apply(params, x, hp)``.

- MLP: ``in -> width``, then ``depth - 1`` equal ``width -> width`` layers stacked on a leading
  axis and applied with ``lax.scan`` (compile time and jaxpr size do not grow with depth), then
  a linear ``width -> classes`` head.
- CNN (AlexNet-style, Krizhevsky et al. 2012 Fig. 1): ``len(channels)`` blocks of
  conv 5 (SAME) -> activation -> pool (window 3 or 2, stride 2, SAME; max, or average per
  ``pool_type``: cuda-convnet's 18pct net is max, avg, avg), then a linear head on the
  flattened features. Vector inputs (N, L), e.g. MNIST-1D, use 1-D convolutions over (L, 1);
  images (N, H, W, C) use 2-D convolutions, so one code path serves both. Convolutions and
  pools are ``bench.layers``' (autodiff's gradients, fast inside XLA CPU's loops).

``static.act_offset`` (one number, or one per hidden layer) is subtracted from every hidden
activation, ``phi(h) - c_l``, before the next layer (and before the CNN's pooling): a centred
variant whose derivative is phi's. ``Model.phi`` stays the raw activation. With
``static.fold_offset`` (MLP) the bias of each layer fed by hidden layer l starts at
``bias_init + c_l * sum_i W_ij``, so at init the network computes exactly the function it
would without the offset; only the parametrisation (the inputs the weight gradients see)
differs. With the default offset 0 no operation is added.

``hp`` holds the traced per-configuration values: ``init_scale`` (sigma_w, multiplies every
initial weight), ``bias_init`` (constant initial bias) and ``slope`` (the activation's first
hyperparameter; for PReLU the initial value of the trained slope, one per layer or per channel).

Per-layer probes (``bench.diagnostics``): ``apply(params, x, hp, perturb)`` adds ``perturb`` to
the hidden pre-activations (``jax.grad`` with respect to a zero ``perturb`` is the gradient with
respect to every pre-activation at once), and ``trace(params, x, hp, perturb=None)`` also
returns every hidden layer's input, pre-activation and activation. ``perturb`` and the
trace's layers have the shape of ``perturbation(...)``: for the MLP ``{"first": (B, width),
"hidden": (depth - 1, B, width)}`` (the scanned layers stay stacked), for the CNN a list of
``(B, *spatial_l, channels_l)``. Without ``perturb`` (the default) ``apply`` traces exactly the
operations it always did: no zeros are added.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

import activations
from bench import layers
from bench.config import GroupStatic

Params = dict[str, Any]
HP_KEYS = ("init_scale", "bias_init", "slope")
KERNEL = 5
MAX_UNROLLED_LAYERS = 8  # hidden width -> width layers up to which the MLP's scan is unrolled


class Model(NamedTuple):
    init: Callable[[jax.Array, dict[str, jax.Array]], Params]
    # apply(params, x, hp, perturb=None) -> logits
    apply: Callable[..., jax.Array]
    # trace(params, x, hp, perturb=None) -> (logits, layers): per hidden layer a dict of its
    # "input", "pre" (pre-activation, perturbation included) and "post" (activation)
    trace: Callable[..., tuple[jax.Array, Any]]
    # phi(h, layer_params, hp): the activation of a hidden layer (its trained slope, if any)
    phi: Callable[..., jax.Array]


def _add(h: jax.Array, eps: jax.Array | None) -> jax.Array:
    return h if eps is None else h + eps


def perturbation(model: Model, params: Params, x: jax.Array, hp: dict[str, jax.Array]) -> Any:
    """A zero perturbation of every hidden pre-activation of ``model`` on inputs ``x``."""
    _, layers = jax.eval_shape(model.trace, params, x, hp)
    return jax.tree.map(
        lambda lay: jnp.zeros(lay["pre"].shape, lay["pre"].dtype),
        layers,
        is_leaf=lambda v: isinstance(v, dict) and "pre" in v,
    )


# name -> (unit-variance distribution, variance as a function of (fan_in, fan_out)).
_SCHEMES: dict[str, tuple[str, Callable[[int, int], float]]] = {
    # Glorot & Bengio 2010 "standard": U[-1/sqrt(fan_in), 1/sqrt(fan_in)], Var = 1/(3 fan_in)
    "standard": ("uniform", lambda i, o: 1 / (3 * i)),
    "xavier_uniform": ("uniform", lambda i, o: 2 / (i + o)),
    "xavier_normal": ("truncated_normal", lambda i, o: 2 / (i + o)),
    "he_uniform": ("uniform", lambda i, o: 2 / i),
    "he_normal": ("truncated_normal", lambda i, o: 2 / i),
    "lecun_uniform": ("uniform", lambda i, o: 1 / i),
    "lecun_normal": ("truncated_normal", lambda i, o: 1 / i),
}
# Std of a standard normal truncated to [-2, 2] (the constant jax.nn.initializers uses).
_TRUNC_STD = 0.87962566103423978


class WeightSpec(NamedTuple):
    shape: tuple[int, ...]  # (..., fan_in axis, fan_out axis); leading axes = stacked layers
    fan_in: int  # receptive field x input channels
    fan_out: int


def _orthonormal_columns(a: jax.Array) -> jax.Array:
    """Q of ``a = Q R`` (``a``: (..., n, k), n >= k) with R's diagonal positive, in plain XLA
    operations: block classical Gram-Schmidt, every projection done twice ("twice is enough":
    orthonormal to float32 rounding). Blocks of up to 16 columns are projected off the finished
    columns with matrix products: a column at a time (a pass over every matrix per column) is
    memory-bound, 2.6x slower on 16 vmapped stacks of 15 layers 256 x 256 (2-core CPU)."""
    k = a.shape[-1]
    b = max(d for d in range(1, 17) if k % d == 0)  # columns per block
    cols = jnp.arange(k)

    def column(j, v):  # Gram-Schmidt inside a block: columns < j of v are done
        x = lax.dynamic_index_in_dim(v, j, axis=-1, keepdims=False)
        done = (jnp.arange(b) < j).astype(v.dtype)
        for _ in range(2):
            x = x - jnp.einsum("...nj,...j->...n", v, jnp.einsum("...nj,...n->...j", v, x) * done)
        x = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
        return lax.dynamic_update_index_in_dim(v, x, j, axis=-1)

    def block(i, q):  # columns < i * b of q are done, the others still those of a
        v = lax.dynamic_slice_in_dim(q, i * b, b, axis=-1)
        done = (cols < i * b).astype(q.dtype)[:, None]
        for _ in range(2):
            v = lax.fori_loop(0, b, column, v - q @ ((jnp.swapaxes(q, -1, -2) @ v) * done))
        return lax.dynamic_update_slice_in_dim(q, v, i * b, axis=-1)

    return lax.fori_loop(0, k // b, block, a)


def _orthogonal(key: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """``jax.nn.initializers.orthogonal()(key, shape, float32)``: the same Gaussian draw and,
    up to rounding, the same matrix (Haar-distributed orthonormal columns, or rows when
    ``shape`` is wide), but orthonormalised without LAPACK's QR. On a CPU split into several
    JAX devices, jaxlib 0.10.2's batched LAPACK kernels fan their batch out over XLA's intra-op
    thread pool and block a pool thread until it is done; one such call per device running at
    once takes every pool thread, and the program deadlocks (0% CPU, no error)."""
    rows, cols = shape
    q = _orthonormal_columns(jax.random.normal(key, (max(rows, cols), min(rows, cols))))
    return q if rows >= cols else q.T


def _stacked(sp: WeightSpec) -> int:
    """Number of layers in ``sp``: its leading axes stack layers (the MLP's hidden stack),
    a conv kernel's (kh, kw, c_in, c_out) is one layer (fan_in = kh kw c_in)."""
    return math.prod(sp.shape) // (sp.fan_in * sp.shape[-1])


def init_weights(
    key, init: str, init_std: float | tuple[float, ...], specs: list[WeightSpec]
) -> list[jax.Array]:
    """Initial weights of every layer, each with the variance of scheme ``init``.

    One random draw for the whole network, cut into layers and scaled per layer: the same
    distributions as ``jax.nn.initializers`` (variance scaling; normal = truncated to +-2 std),
    but one sampler in the compiled program instead of one per layer, which halves the compile
    time of a small training program. Orthogonal init is drawn per matrix (``_orthogonal``).

    ``init_std`` (``gaussian`` only): one std for every layer, or a tuple with one per weight
    layer in the order of ``specs``, a spec with stacked layers taking one for each (in stack
    order). The draw does not depend on it: a tuple of equal values gives exactly the weights
    of that one value.
    """
    if init == "orthogonal":
        keys = jax.random.split(key, len(specs))
        out = []
        for k, sp in zip(keys, specs, strict=True):
            # One (fan_in, fan_out-columns) matrix per layer, as jax.nn.initializers.orthogonal
            # reshapes a kernel: a conv's (kh, kw, c_in, c_out) is one (kh kw c_in, c_out)
            # matrix (variance 1/fan_in), the MLP's stacked hidden layers one each.
            mats = jax.vmap(lambda k, sp=sp: _orthogonal(k, (sp.fan_in, sp.shape[-1])))(
                jax.random.split(k, _stacked(sp))
            )
            out.append(mats.reshape(sp.shape))
        return out
    sizes = [math.prod(sp.shape) for sp in specs]
    total = sum(sizes)
    stds: list[Any]
    if init == "gaussian" and isinstance(init_std, tuple):
        counts = [_stacked(sp) for sp in specs]
        if len(init_std) != sum(counts):
            raise ValueError(f"init_std: {len(init_std)} stds for {sum(counts)} weight layers")
        flat, stds, offset = jax.random.normal(key, (total,)), [], 0
        for n in counts:
            layer_stds = init_std[offset : offset + n]
            offset += n
            # One value (an empty stack has none): scaled as a scalar init_std would be.
            stds.append(layer_stds if len(set(layer_stds)) > 1 else (layer_stds or (1.0,))[0])
    elif init == "gaussian":
        flat, stds = jax.random.normal(key, (total,)), [init_std] * len(specs)
    else:
        dist, variance = _SCHEMES[init]
        if dist == "uniform":  # U[-sqrt 3, sqrt 3] has unit variance
            flat = jax.random.uniform(key, (total,), minval=-(3**0.5), maxval=3**0.5)
        else:
            flat = jax.random.truncated_normal(key, -2.0, 2.0, (total,)) / _TRUNC_STD
        stds = [variance(sp.fan_in, sp.fan_out) ** 0.5 for sp in specs]
    out, offset = [], 0
    for sp, n, std in zip(specs, sizes, stds, strict=True):
        if isinstance(std, tuple):  # one std per stacked layer (the leading axes of sp.shape)
            w = flat[offset : offset + n].reshape(len(std), -1)
            out.append((w * jnp.asarray(std, jnp.float32)[:, None]).reshape(sp.shape))
        else:
            out.append(flat[offset : offset + n].reshape(sp.shape) * std)
        offset += n
    return out


def _activation(static: GroupStatic) -> tuple[Callable[..., jax.Array], str | None, bool]:
    """(function, name of the hyperparameter ``slope`` sets, whether it is trained)."""
    return activations.get(static.activation), static.slope_param, static.activation == "prelu"


def _slope_init(static: GroupStatic, hp, n_channels: int) -> jax.Array:
    shape = (n_channels,) if static.prelu_mode == "channel" else ()
    return jnp.full(shape, hp["slope"], jnp.float32)


def offsets(static: GroupStatic) -> tuple[float, ...]:
    """``act_offset`` of each hidden layer (MLP: depth, CNN: conv layers)."""
    c = static.act_offset
    n = static.depth
    out = tuple(float(x) for x in c) if isinstance(c, tuple) else (float(c),) * n
    if len(out) != n:
        raise ValueError(f"act_offset: {len(out)} offsets for {n} hidden layers")
    return out


def make_mlp(static: GroupStatic, in_shape: tuple[int, ...], num_classes: int) -> Model:
    act, slope_name, trained = _activation(static)
    n_in, width, depth = math.prod(in_shape), static.width, static.depth
    assert width is not None
    offs = offsets(static)
    centred = any(offs)

    def init(key, hp):
        specs = [
            WeightSpec((n_in, width), n_in, width),
            WeightSpec((depth - 1, width, width), width, width),
            WeightSpec((width, num_classes), width, num_classes),
        ]
        ws = init_weights(key, static.init, static.init_std, specs)
        first, hidden, head = ({"w": w * hp["init_scale"]} for w in ws)
        for layer, n in ((first, width), (head, num_classes)):
            layer["b"] = jnp.full((n,), hp["bias_init"], jnp.float32)
        hidden["b"] = jnp.full((depth - 1, width), hp["bias_init"], jnp.float32)
        if static.fold_offset and centred:
            # W (phi - c) + (b + W c) = W phi + b: the same function, inputs centred.
            c = jnp.asarray(offs, jnp.float32)
            hidden["b"] = hidden["b"] + c[:-1, None] * jnp.sum(hidden["w"], axis=-2)
            head["b"] = head["b"] + c[-1] * jnp.sum(head["w"], axis=0)
        if trained:
            first["slope"] = _slope_init(static, hp, width)
            hidden["slope"] = jnp.broadcast_to(
                _slope_init(static, hp, width), (depth - 1, *first["slope"].shape)
            )
        return {"first": first, "hidden": hidden, "head": head}

    def phi(h, layer, hp):
        if trained:
            return act(h, layer["slope"])
        return act(h, **{slope_name: hp["slope"]}) if slope_name else act(h)

    def forward(params, x, hp, perturb, capture):
        x = x.reshape(x.shape[0], -1)
        eps = perturb if perturb is not None else {"first": None, "hidden": None}
        pre = _add(x @ params["first"]["w"] + params["first"]["b"], eps["first"])
        h = phi(pre, params["first"], hp)
        if centred:
            h = h - offs[0]
        first = {"input": x, "pre": pre, "post": h} if capture else None
        # The offsets of layers 2.. ride along the scan (None, hence nothing, when all zero).
        rest = jnp.asarray(offs[1:], jnp.float32) if centred else None

        def layer(h, p_eps):
            p, e, c = p_eps
            pre = _add(h @ p["w"] + p["b"], e)
            out = phi(pre, p, hp)
            if c is not None:
                out = out - c
            return out, ({"input": h, "pre": pre, "post": out} if capture else None)

        # Shallow stacks are unrolled: a CPU while-loop step costs about as much as a small
        # layer; deep ones stay a loop, so compile time does not grow with depth.
        unroll = depth - 1 <= MAX_UNROLLED_LAYERS
        xs = (params["hidden"], eps["hidden"], rest)
        h, hidden = lax.scan(layer, h, xs, unroll=unroll)
        return h @ params["head"]["w"] + params["head"]["b"], {"first": first, "hidden": hidden}

    def apply(params, x, hp, perturb=None):
        return forward(params, x, hp, perturb, False)[0]

    def trace(params, x, hp, perturb=None):
        return forward(params, x, hp, perturb, True)

    return Model(init, apply, trace, phi)


_POOLS = {"max": layers.max_pool, "avg": layers.avg_pool}


def make_cnn(static: GroupStatic, in_shape: tuple[int, ...], num_classes: int) -> Model:
    act, slope_name, trained = _activation(static)
    channels = static.channels
    assert channels is not None
    spatial: tuple[int, ...]
    if len(in_shape) == 1:  # (L,) -> (L, 1): 1-D convolutions
        spatial, c_in = (in_shape[0],), 1
    elif len(in_shape) == 3:
        spatial, c_in = tuple(in_shape[:2]), in_shape[2]
    else:
        raise ValueError(f"model: the CNN needs (L,) or (H, W, C) inputs, got {in_shape}")
    nd = len(spatial)
    kinds = static.pool_type
    kinds = (kinds,) * len(channels) if isinstance(kinds, str) else tuple(kinds)
    if len(kinds) != len(channels):
        raise ValueError(f"pool_type: {len(kinds)} pool types for {len(channels)} conv layers")
    pools = [functools.partial(_POOLS[k], window=static.pool, stride=2) for k in kinds]
    offs = offsets(static)
    if static.fold_offset and any(offs):
        raise ValueError("fold_offset: MLP only (zero padding makes the fold inexact)")

    def out_features():
        size = list(spatial)
        for _ in channels:
            size = [-(-s // 2) for s in size]  # SAME pooling with stride 2: ceil(s / 2)
        return math.prod(size) * channels[-1]

    n_flat = out_features()

    def init(key, hp):
        receptive = KERNEL**nd
        c_ins = (c_in, *channels[:-1])
        specs = [
            WeightSpec((*(KERNEL,) * nd, ci, co), receptive * ci, receptive * co)
            for ci, co in zip(c_ins, channels, strict=True)
        ]
        specs.append(WeightSpec((n_flat, num_classes), n_flat, num_classes))
        ws = init_weights(key, static.init, static.init_std, specs)
        convs = []
        for w, c_out in zip(ws[:-1], channels, strict=True):
            layer = {
                "w": w * hp["init_scale"],
                "b": jnp.full((c_out,), hp["bias_init"], jnp.float32),
            }
            if trained:
                layer["slope"] = _slope_init(static, hp, c_out)
            convs.append(layer)
        head = {
            "w": ws[-1] * hp["init_scale"],
            "b": jnp.full((num_classes,), hp["bias_init"], jnp.float32),
        }
        return {"convs": convs, "head": head}

    def phi(h, p, hp):
        if trained:
            return act(h, p["slope"])
        return act(h, **{slope_name: hp["slope"]}) if slope_name else act(h)

    def forward(params, x, hp, perturb, capture):
        h = x.reshape(x.shape[0], *spatial, c_in)
        eps = perturb if perturb is not None else [None] * len(channels)
        captured = []
        # channel counts differ: no scan
        for p, e, pool, c in zip(params["convs"], eps, pools, offs, strict=True):
            inp = h
            pre = _add(layers.conv(h, p["w"]) + p["b"], e)
            h = phi(pre, p, hp)
            if c:
                h = h - c
            if capture:
                captured.append({"input": inp, "pre": pre, "post": h})
            h = pool(h)
        h = h.reshape(h.shape[0], -1)
        return h @ params["head"]["w"] + params["head"]["b"], captured

    def apply(params, x, hp, perturb=None):
        return forward(params, x, hp, perturb, False)[0]

    def trace(params, x, hp, perturb=None):
        return forward(params, x, hp, perturb, True)

    return Model(init, apply, trace, phi)


def make_model(static: GroupStatic, in_shape: tuple[int, ...], num_classes: int) -> Model:
    """The model a group trains, for inputs of shape ``in_shape`` (one example)."""
    if static.model == "mlp":
        return make_mlp(static, in_shape, num_classes)
    if static.model == "cnn":
        return make_cnn(static, in_shape, num_classes)
    raise ValueError(f"model: unknown model {static.model!r}")

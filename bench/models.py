"""Models as pure functions over pytrees: ``init(key, hp) -> params``, ``apply(params, x, hp)``.

- MLP: ``in -> width``, then ``depth - 1`` equal ``width -> width`` layers stacked on a leading
  axis and applied with ``lax.scan`` (compile time and jaxpr size do not grow with depth), then
  a linear ``width -> classes`` head.
- CNN (AlexNet-style, Krizhevsky et al. 2012 Fig. 1): ``len(channels)`` blocks of
  conv 5 (SAME) -> activation -> max-pool (window 3 or 2, stride 2), then a linear head on the
  flattened features. Vector inputs (N, L), e.g. MNIST-1D, use 1-D convolutions over (L, 1);
  images (N, H, W, C) use 2-D convolutions, so one code path serves both.

``hp`` holds the traced per-configuration values: ``init_scale`` (sigma_w, multiplies every
initial weight), ``bias_init`` (constant initial bias) and ``slope`` (the activation's first
hyperparameter; for PReLU the initial value of the trained slope, one per layer or per channel).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

import activations
from bench.config import GroupStatic

Params = dict[str, Any]
KERNEL = 5


class Model(NamedTuple):
    init: Callable[[jax.Array, dict[str, jax.Array]], Params]
    apply: Callable[[Params, jax.Array, dict[str, jax.Array]], jax.Array]


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


def init_weights(key, init: str, init_std: float, specs: list[WeightSpec]) -> list[jax.Array]:
    """Initial weights of every layer, each with the variance of scheme ``init``.

    One random draw for the whole network, cut into layers and scaled per layer: the same
    distributions as ``jax.nn.initializers`` (variance scaling; normal = truncated to +-2 std),
    but one sampler in the compiled program instead of one per layer, which halves the compile
    time of a small training program. Orthogonal init is drawn per matrix (QR).
    """
    if init == "orthogonal":
        ortho = jax.nn.initializers.orthogonal()
        keys = jax.random.split(key, len(specs))
        out = []
        for k, sp in zip(keys, specs, strict=True):
            n_stack = math.prod(sp.shape[:-2]) if len(sp.shape) > 2 else 1
            mats = jax.vmap(lambda k, sp=sp: ortho(k, sp.shape[-2:], jnp.float32))(
                jax.random.split(k, n_stack)
            )
            out.append(mats.reshape(sp.shape))
        return out
    sizes = [math.prod(sp.shape) for sp in specs]
    total = sum(sizes)
    if init == "gaussian":
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
        out.append(flat[offset : offset + n].reshape(sp.shape) * std)
        offset += n
    return out


def _activation(static: GroupStatic) -> tuple[Callable[..., jax.Array], str | None, bool]:
    """(function, name of the hyperparameter ``slope`` sets, whether it is trained)."""
    return activations.get(static.activation), static.slope_param, static.activation == "prelu"


def _slope_init(static: GroupStatic, hp, n_channels: int) -> jax.Array:
    shape = (n_channels,) if static.prelu_mode == "channel" else ()
    return jnp.full(shape, hp["slope"], jnp.float32)


def make_mlp(static: GroupStatic, in_shape: tuple[int, ...], num_classes: int) -> Model:
    act, slope_name, trained = _activation(static)
    n_in, width, depth = math.prod(in_shape), static.width, static.depth
    assert width is not None

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

    def apply(params, x, hp):
        h = phi(
            x.reshape(x.shape[0], -1) @ params["first"]["w"] + params["first"]["b"],
            params["first"],
            hp,
        )

        def layer(h, p):
            return phi(h @ p["w"] + p["b"], p, hp), None

        h, _ = lax.scan(layer, h, params["hidden"])
        return h @ params["head"]["w"] + params["head"]["b"]

    return Model(init, apply)


def make_cnn(static: GroupStatic, in_shape: tuple[int, ...], num_classes: int) -> Model:
    act, slope_name, trained = _activation(static)
    channels = static.channels
    assert channels is not None
    if len(in_shape) == 1:  # (L,) -> (L, 1): 1-D convolutions
        spatial, c_in, dims = (in_shape[0],), 1, ("NWC", "WIO", "NWC")
    elif len(in_shape) == 3:
        spatial, c_in, dims = tuple(in_shape[:2]), in_shape[2], ("NHWC", "HWIO", "NHWC")
    else:
        raise ValueError(f"model: the CNN needs (L,) or (H, W, C) inputs, got {in_shape}")
    nd = len(spatial)
    window = (1, *(static.pool,) * nd, 1)
    strides = (1, *(2,) * nd, 1)

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

    def apply(params, x, hp):
        h = x.reshape(x.shape[0], *spatial, c_in)
        for p in params["convs"]:  # channel counts differ, so these layers cannot be scanned
            h = lax.conv_general_dilated(h, p["w"], (1,) * nd, "SAME", dimension_numbers=dims)
            h = h + p["b"]
            if trained:
                h = act(h, p["slope"])
            else:
                h = act(h, **{slope_name: hp["slope"]}) if slope_name else act(h)
            h = lax.reduce_window(h, -jnp.inf, lax.max, window, strides, "SAME")
        h = h.reshape(h.shape[0], -1)
        return h @ params["head"]["w"] + params["head"]["b"]

    return Model(init, apply)


def make_model(static: GroupStatic, in_shape: tuple[int, ...], num_classes: int) -> Model:
    """The model a group trains, for inputs of shape ``in_shape`` (one example)."""
    if static.model == "mlp":
        return make_mlp(static, in_shape, num_classes)
    if static.model == "cnn":
        return make_cnn(static, in_shape, num_classes)
    raise ValueError(f"model: unknown model {static.model!r}")

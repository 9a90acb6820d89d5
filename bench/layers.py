"""The CNN's layers with backward passes written for XLA CPU: max-pool, average pool, conv.

Autodiff's rules for these layers are correct but slow on XLA CPU (FINDINGS.md): an
overlapping max-pool differentiates into ``select_and_scatter_add``, and inside ``lax.scan``
the backward convolutions keep a layout that runs on a slow path. The rules here use only
strided slices, pads, selects and canonical forward convolutions, which stay fast inside a
loop, and give autodiff's values and gradients.

Layout: ``(N, *spatial, C)`` with one or two spatial axes (NLC or NHWC); kernels
``(*window, C_in, C_out)`` (WIO or HWIO). Windows are square, strides equal on every axis;
``padding`` is ``"SAME"`` or ``"VALID"`` as in ``lax.reduce_window``.
"""

from __future__ import annotations

import itertools
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax

_DIMS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}


def _pads(spatial: tuple[int, ...], window: int, stride: int, padding: str) -> list:
    nd = len(spatial)
    return lax.padtype_to_pads(spatial, (window,) * nd, (stride,) * nd, padding)


def _windows(x: Array, window: int, stride: int, out: tuple[int, ...]):
    """(offset, strided slice) for every window offset of the padded ``x``, row-major."""
    nd = x.ndim - 2
    for off in itertools.product(range(window), repeat=nd):
        start = (0, *off, 0)
        limit = (
            x.shape[0],
            *(o + (n - 1) * stride + 1 for o, n in zip(off, out, strict=True)),
            x.shape[-1],
        )
        yield off, lax.slice(x, start, limit, (1, *(stride,) * nd, 1))


def _pooled_shape(spatial, window, stride, pads) -> tuple[int, ...]:
    return tuple(
        (n + lo + hi - window) // stride + 1 for n, (lo, hi) in zip(spatial, pads, strict=True)
    )


def _pad_spatial(x: Array, pads, value) -> Array:
    return lax.pad(
        x, jnp.asarray(value, x.dtype), [(0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0)]
    )


def max_pool(x: Array, window: int, stride: int, padding: str = "SAME") -> Array:
    """Max over ``window``-wide windows every ``stride`` positions of each spatial axis.

    The value is ``lax.reduce_window(x, -inf, lax.max, ...)``; the gradient is autodiff's:
    each window sends its cotangent to one position, the first maximum in row-major window
    order (``select_and_scatter_add`` with ``ge``; a padded -inf counts as a candidate).

    >>> x = jnp.array([[[1.0], [3.0], [3.0], [0.0], [2.0]]])  # (N, L, C) = (1, 5, 1)
    >>> max_pool(x, 3, 2).ravel().tolist()
    [3.0, 3.0, 2.0]
    >>> jax.grad(lambda x: max_pool(x, 3, 2).sum())(x).ravel().tolist()
    [0.0, 2.0, 0.0, 0.0, 1.0]
    """
    if window ** (x.ndim - 2) > 127:
        raise ValueError(f"max_pool: window {window} has too many positions for an int8 index")
    return _max_pool(x, window, stride, padding, x.shape[1:-1])


def _max_pool_impl(x, window, stride, padding, spatial):
    nd = x.ndim - 2
    return lax.reduce_window(
        x, -jnp.inf, lax.max, (1, *(window,) * nd, 1), (1, *(stride,) * nd, 1), padding
    )


_max_pool = jax.custom_vjp(_max_pool_impl, nondiff_argnums=(1, 2, 3, 4))


# Save the position of each window's maximum as int8 (1 byte per output, not the 4 per input
# that autodiff keeps). The running selection copies select_and_scatter's `ge` rule: keep the
# current candidate unless it is not >= the next one (first maximum; NaN handled alike).
def _max_pool_fwd(x, window, stride, padding, spatial):
    pads = _pads(x.shape[1:-1], window, stride, padding)
    out = _pooled_shape(x.shape[1:-1], window, stride, pads)
    best = arg = None
    for code, (_, v) in enumerate(_windows(_pad_spatial(x, pads, -jnp.inf), window, stride, out)):
        if best is None:
            best, arg = v, jnp.zeros(v.shape, jnp.int8)
        else:
            take = ~(best >= v)
            best, arg = jnp.where(take, v, best), jnp.where(take, jnp.int8(code), arg)
    return _max_pool_impl(x, window, stride, padding, spatial), arg


# Each output's cotangent goes to its window's argmax. Offsets congruent modulo the stride
# land on the same phase of the input grid: sum them there (shifted by whole outputs), then
# interleave the stride**nd phases with one stack + reshape. No scatter, no interior padding.
def _max_pool_bwd(window, stride, padding, spatial, arg, g):
    nd = g.ndim - 2
    pads = _pads(spatial, window, stride, padding)
    out = g.shape[1:-1]
    span = -(-window // stride)  # outputs a phase's offsets spread over
    q = tuple(n + span - 1 for n in out)
    zero = jnp.zeros((), g.dtype)
    phases = {}
    for code, off in enumerate(itertools.product(range(window), repeat=nd)):
        phase, shift = tuple(o % stride for o in off), tuple(o // stride for o in off)
        part = jnp.where(arg == code, g, zero)
        cfg = [
            (0, 0, 0),
            *((s, qi - n - s, 0) for s, qi, n in zip(shift, q, out, strict=True)),
            (0, 0, 0),
        ]
        part = lax.pad(part, zero, cfg)
        phases[phase] = part if phase not in phases else phases[phase] + part
    blank = jnp.zeros((g.shape[0], *q, g.shape[-1]), g.dtype)
    stacked = jnp.stack(
        [phases.get(p, blank) for p in itertools.product(range(stride), repeat=nd)]
    ).reshape(*(stride,) * nd, g.shape[0], *q, g.shape[-1])
    # (s_1, .., s_nd, N, q_1, .., q_nd, C) -> (N, q_1, s_1, .., q_nd, s_nd, C)
    perm = [nd]
    for i in range(nd):
        perm += [nd + 1 + i, i]
    full = stacked.transpose(*perm, 2 * nd + 1).reshape(
        g.shape[0], *(qi * stride for qi in q), g.shape[-1]
    )
    # Back to the unpadded input: drop the low padding, cut or zero-fill the high end.
    cfg = [(0, 0, 0)]
    for (lo, _), n, qi in zip(pads, spatial, q, strict=True):
        cfg.append((-lo, lo + n - qi * stride, 0))
    return (lax.pad(full, zero, [*cfg, (0, 0, 0)]),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def avg_pool(x: Array, window: int, stride: int, padding: str = "SAME") -> Array:
    """Mean over each window's in-bounds positions (padding is not counted).

    cuda-convnet's average pooling divides by the positions inside the image
    (``regionSize`` in its ``kLocalPool``); with SAME padding on even sizes its windows are
    the same as here. Written as a sum of strided slices: autodiff turns each slice into a pad
    of the cotangent, which XLA CPU fuses (``reduce_window``'s rule is a padded
    ``reduce_window`` again).

    >>> x = jnp.array([[[1.0], [3.0], [5.0], [7.0]]])  # (N, L, C) = (1, 4, 1)
    >>> avg_pool(x, 3, 2).ravel().tolist()
    [3.0, 6.0]
    """
    spatial = x.shape[1:-1]
    pads = _pads(spatial, window, stride, padding)
    out = _pooled_shape(spatial, window, stride, pads)
    total: Array | None = None
    for _, v in _windows(_pad_spatial(x, pads, 0), window, stride, out):
        total = v if total is None else total + v
    # Positions inside the image per window: a constant, computed once per shape.
    ones = np.pad(np.ones(spatial), list(pads))
    count = cast(
        np.ndarray,
        sum(
            ones[
                tuple(
                    slice(o, o + (n - 1) * stride + 1, stride)
                    for o, n in zip(off, out, strict=True)
                )
            ]
            for off in itertools.product(range(window), repeat=len(spatial))
        ),
    )
    assert total is not None  # window >= 1: at least one term
    return total / jnp.asarray(count[None, ..., None], x.dtype)


def conv(x: Array, w: Array) -> Array:
    """Stride-1 SAME convolution (cross-correlation, as ``lax.conv_general_dilated``).

    ``x`` is (N, *spatial, C_in), ``w`` is (*kernel, C_in, C_out). Both gradients are written
    as canonical NHWC/HWIO forward convolutions, the form XLA CPU runs fast inside a loop:

    - input: the cotangent convolved with the spatially flipped kernel, in/out swapped;
    - kernel: the input as (C_in, *spatial, N) convolved with the cotangent as
      (*spatial, N, C_out): the batch is the contraction axis.

    >>> x, w = jnp.ones((1, 4, 1)), jnp.ones((3, 1, 1))
    >>> conv(x, w).ravel().tolist()
    [2.0, 3.0, 3.0, 2.0]
    """
    return _conv(x, w)


def _conv_impl(x, w):
    nd = x.ndim - 2
    return lax.conv_general_dilated(x, w, (1,) * nd, "SAME", dimension_numbers=_DIMS[nd])


_conv = jax.custom_vjp(_conv_impl)


# Save both operands: each gradient needs the other one.
def _conv_fwd(x, w):
    return _conv_impl(x, w), (x, w)


def _conv_bwd(res, g):
    x, w = res
    nd = x.ndim - 2
    kernel, ones = w.shape[:nd], (1,) * nd
    pads = lax.padtype_to_pads(x.shape[1:-1], kernel, ones, "SAME")
    w_t = jnp.swapaxes(lax.rev(w, tuple(range(nd))), -1, -2)
    back = [(k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(kernel, pads, strict=True)]
    dx = lax.conv_general_dilated(g, w_t, ones, back, dimension_numbers=_DIMS[nd])
    spatial = tuple(range(1, nd + 1))
    x_t = x.transpose(nd + 1, *spatial, 0)  # (C_in, *spatial, N)
    g_t = g.transpose(*spatial, 0, nd + 1)  # (*spatial, N, C_out)
    dw = lax.conv_general_dilated(x_t, g_t, ones, pads, dimension_numbers=_DIMS[nd])
    return dx, dw.transpose(*spatial, 0, nd + 1)  # (C_in, *kernel, C_out) -> (*kernel, ...)


_conv.defvjp(_conv_fwd, _conv_bwd)


__all__ = ["avg_pool", "conv", "max_pool"]

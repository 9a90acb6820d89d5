"""Smooth, non-saturating activations: GELU, SiLU/Swish, Mish, softplus, squareplus, hard SiLU."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from ._common import (
    Array,
    ArrayLike,
    as_float,
    gated,
    hyper_ct,
    param,
    sigmoid_minus_abs,
    softplus0,
    up,
)

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_GELU_A = 0.044715
# Beyond these |x| the smooth gates are exactly 0 or 1 even in float64 (e^-745 underflows),
# so clamping there changes nothing and keeps inf * 0 out of the derivatives.
_GELU_CLAMP = 25.0
_EXP_CLAMP = 800.0


def gelu(x: ArrayLike, approximate: bool = True) -> Array:
    r"""Gaussian error linear unit: x Phi(x), or its tanh approximation (the jax.nn default).

    .. math:: \text{exact: } f(x) = x\,\Phi(x), \quad f'(x) = \Phi(x) + x\,\varphi(x)

    .. math:: \text{approximate: } f(x) = \tfrac{x}{2}\left(1 + \tanh u\right), \;
       u = \sqrt{2/\pi}\,(x + 0.044715\,x^3)

    Both forms are evaluated as x times a gate computed without cancellation (``erfc`` for the
    exact form, ``sigmoid(2u)`` for ``(1 + tanh u) / 2``), and give 0 at -inf where jax.nn
    gives NaN. f'(0) = 1/2.

    >>> import activations as A
    >>> round(float(A.gelu(1.0, approximate=False)), 6)
    0.841345

    Reference: Hendrycks & Gimpel 2016.
    """
    x = as_float(x)
    return _gelu_tanh(x) if approximate else _gelu_exact(x)


def _gelu_exact_impl(x: Array) -> Array:
    xc = up(x)
    return gated(xc, 0.5 * lax.erfc(-xc / math.sqrt(2))).astype(x.dtype)


_gelu_exact = jax.custom_vjp(_gelu_exact_impl)


# Save x: the derivative Phi(x) + x phi(x) is a function of x, not of the output.
def _gelu_exact_fwd(x: Array) -> tuple[Array, Array]:
    return _gelu_exact_impl(x), x


def _gelu_exact_bwd(x: Array, g: Array) -> tuple[Array]:
    xc = up(x)
    xm = jnp.clip(xc, -_GELU_CLAMP * 2, _GELU_CLAMP * 2)
    d = 0.5 * lax.erfc(-xc / math.sqrt(2)) + xm * _INV_SQRT_2PI * jnp.exp(-0.5 * xm * xm)
    return ((up(g) * d).astype(x.dtype),)


_gelu_exact.defvjp(_gelu_exact_fwd, _gelu_exact_bwd)


def _gelu_u2(x: Array) -> Array:
    """2u for the tanh form; (1 + tanh u) / 2 = sigmoid(2u)."""
    return 2 * _SQRT_2_OVER_PI * (x + _GELU_A * x * x * x)


def _gelu_tanh_parts(x: Array) -> tuple[Array, Array, Array]:
    """(x, x clamped, m = sigmoid(-|2u|)): the gate (1 + tanh u) / 2 = sigmoid(2u) is 1 - m or m."""
    xc = up(x)
    xm = jnp.clip(xc, -_GELU_CLAMP, _GELU_CLAMP)
    return xc, xm, sigmoid_minus_abs(_gelu_u2(xm))


def _gelu_tanh_impl(x: Array) -> Array:
    xc, _, m = _gelu_tanh_parts(x)
    return gated(xc, jnp.where(xc >= 0, 1 - m, m)).astype(x.dtype)  # sign(2u) = sign(x)


_gelu_tanh = jax.custom_vjp(_gelu_tanh_impl)


# Save x and m = sigmoid(-|2u|) (in x's dtype; jax.nn.gelu keeps five arrays): the backward
# pass needs x^2 and the gate, and gets the gate and its derivative m (1 - m) without an exp.
def _gelu_tanh_fwd(x: Array) -> tuple[Array, tuple[Array, Array]]:
    xc, _, m = _gelu_tanh_parts(x)
    return gated(xc, jnp.where(xc >= 0, 1 - m, m)).astype(x.dtype), (x, m.astype(x.dtype))


def _gelu_tanh_bwd(res: tuple[Array, Array], g: Array) -> tuple[Array]:
    x, m = res
    xm = jnp.clip(up(x), -_GELU_CLAMP, _GELU_CLAMP)
    mc = up(m)
    dz = 2 * _SQRT_2_OVER_PI * (1 + 3 * _GELU_A * xm * xm)
    d = jnp.where(xm >= 0, 1 - mc, mc) + xm * (mc * (1 - mc)) * dz
    return ((up(g) * d).astype(x.dtype),)


_gelu_tanh.defvjp(_gelu_tanh_fwd, _gelu_tanh_bwd)


def silu(x: ArrayLike, beta: ArrayLike = 1.0) -> Array:
    r"""SiLU / Swish: x sigmoid(beta x); beta = 1 is SiLU (jax.nn.silu, jax.nn.swish).

    .. math:: f'(x) = s(\beta x) + \beta x\, s'(\beta x), \quad
       \partial f / \partial \beta = x^2 s'(\beta x)

    ``beta`` may be an array (learned per channel, as in Ramachandran et al.). Gives 0 at -inf
    where jax.nn gives NaN. f'(0) = 1/2.

    >>> import activations as A
    >>> round(float(A.silu(1.0)), 6)
    0.731059

    Reference: Elfwing, Uchibe, Doya 2017; Ramachandran, Zoph, Le 2017.
    """
    x = as_float(x)
    return _silu(x, param(beta, up(x)))


swish = silu


def _silu_parts(x: Array, beta: Array) -> tuple[Array, Array, Array]:
    """(x in the compute dtype, z = beta x, m = sigmoid(-|z|)): sigmoid(z) is 1 - m or m."""
    xc = up(x)
    z = beta * xc
    return xc, z, sigmoid_minus_abs(z)


def _silu_impl(x: Array, beta: Array) -> Array:
    xc, z, m = _silu_parts(x, beta)
    return gated(xc, jnp.where(z >= 0, 1 - m, m)).astype(x.dtype)


_silu = jax.custom_vjp(_silu_impl)


# Save x and m = sigmoid(-|beta x|) (in x's dtype; jax.nn.silu keeps three arrays): the
# backward pass gets sigmoid(beta x) and s' = m (1 - m) without an exp, and s' keeps its
# e^-|z| tail because m is the small one of the pair.
def _silu_fwd(x: Array, beta: Array) -> tuple[Array, tuple[Array, Array, Array]]:
    xc, z, m = _silu_parts(x, beta)
    y = gated(xc, jnp.where(z >= 0, 1 - m, m)).astype(x.dtype)
    return y, (x, beta, m.astype(x.dtype))


def _silu_bwd(res: tuple[Array, Array, Array], g: Array) -> tuple[Array, Array]:
    x, beta, m = res
    xc, gc, mc = up(x), up(g), up(m)
    z = beta * xc
    sp = mc * (1 - mc)
    # gated: where s'(z) is exactly 0 (|z| past the exp range, x = +-inf) the term is 0, not NaN.
    gx = gc * (jnp.where(z >= 0, 1 - mc, mc) + gated(z, sp))
    gbeta = gc * gated(xc * xc, sp)
    return gx.astype(x.dtype), hyper_ct(gbeta, beta)


_silu.defvjp(_silu_fwd, _silu_bwd)


def hard_silu(x: ArrayLike) -> Array:
    r"""Hard SiLU / hard swish: x relu6(x + 3) / 6.

    .. math:: f'(x) = 0 \;(x \le -3), \quad (2x + 3)/6 \;(-3 < x < 3), \quad 1 \;(x \ge 3)

    (the kink conventions of jax.nn: 0 at -3, 1 at 3).

    >>> import activations as A
    >>> A.hard_silu(jnp.array([-4.0, 0.0, 4.0])).tolist()
    [0.0, 0.0, 4.0]

    Reference: Howard et al. 2019, "Searching for MobileNetV3".
    """
    return _hard_silu(as_float(x))


hard_swish = hard_silu


def _hard_silu_impl(x: Array) -> Array:
    xc = up(x)
    return gated(xc, jnp.clip(xc + 3, 0, 6) / 6).astype(x.dtype)


_hard_silu = jax.custom_vjp(_hard_silu_impl)


# Save x: inside (-3, 3) the derivative is linear in x.
def _hard_silu_fwd(x: Array) -> tuple[Array, Array]:
    return _hard_silu_impl(x), x


def _hard_silu_bwd(x: Array, g: Array) -> tuple[Array]:
    xc = up(x)
    d = jnp.where(xc <= -3, 0, jnp.where(xc >= 3, 1, (2 * xc + 3) / 6))
    return ((up(g) * d).astype(x.dtype),)


_hard_silu.defvjp(_hard_silu_fwd, _hard_silu_bwd)


def _mish_parts(x: Array) -> tuple[Array, Array, Array]:
    """tanh(softplus(x)), sech^2(softplus(x)) and t = e^-|x|: one exp, one division, no
    cancellation.

    For x > 0, tanh(sp) = (1 + 2t) / (1 + 2t + 2t^2); for x <= 0, tanh(sp) = n / (n + 2) with
    n = t (t + 2). 1 - tanh^2 is formed from the exact complements 2t^2 / D and 2 / (n + 2),
    so it keeps its tail. On each side the gate and its complement share the denominator, so
    its reciprocal is taken once (select first, then divide).
    """
    t = jnp.exp(-jnp.abs(x))
    n = t * (t + 2)
    pos = x > 0
    inv = 1 / jnp.where(pos, 1 + 2 * t + 2 * t * t, n + 2)
    gate = jnp.where(pos, 1 + 2 * t, n) * inv
    one_minus = jnp.where(pos, 2 * t * t, 2) * inv
    return gate, one_minus * (1 + gate), t


def mish(x: ArrayLike) -> Array:
    r"""Mish: x tanh(softplus(x)).

    .. math:: f'(x) = \tanh(\mathrm{sp}(x)) + x\,\mathrm{sech}^2(\mathrm{sp}(x))\,s(x)

    f'(0) = 0.6. Gives 0 at -inf where jax.nn gives NaN.

    >>> import activations as A
    >>> round(float(A.mish(1.0)), 6)
    0.865098

    Reference: Misra 2019.
    """
    return _mish(as_float(x))


def _mish_impl(x: Array) -> Array:
    xc = up(x)
    return gated(xc, _mish_parts(xc)[0]).astype(x.dtype)


_mish = jax.custom_vjp(_mish_impl)


# Save x: the derivative needs softplus(x) and sigmoid(x), both cheapest from x.
def _mish_fwd(x: Array) -> tuple[Array, Array]:
    return _mish_impl(x), x


def _mish_bwd(x: Array, g: Array) -> tuple[Array]:
    xc = up(x)
    gate, sech2_sp, t = _mish_parts(xc)
    xm = jnp.where(jnp.abs(xc) <= _EXP_CLAMP, xc, 0)
    sig = jnp.where(xc >= 0, 1, t) / (1 + t)  # sigmoid(x) from the same exp
    d = gate + xm * sech2_sp * sig
    return ((up(g) * d).astype(x.dtype),)


_mish.defvjp(_mish_fwd, _mish_bwd)


def softplus(x: ArrayLike, *, beta: ArrayLike = 1.0, threshold: ArrayLike | None = None) -> Array:
    r"""Softplus: log(1 + e^{beta x}) / beta, linear above ``threshold`` (PyTorch's options).

    .. math:: f'(x) = \text{sigmoid}(\beta x), \quad
       \partial f / \partial \beta = \frac{x\,s(\beta x)}{\beta} - \frac{f(x)}{\beta}

    The defaults (beta = 1, no threshold) are ``jax.nn.softplus``; ``threshold=20`` gives
    ``torch.nn.functional.softplus``, which returns x where beta x > threshold.

    >>> import activations as A
    >>> round(float(A.softplus(0.0)), 6), float(jax.grad(A.softplus)(0.0))
    (0.693147, 0.5)

    Reference: Dugas et al. 2001; Glorot, Bordes, Bengio 2011.
    """
    x = as_float(x)
    xc = up(x)
    thr = math.inf if threshold is None else threshold
    return _softplus(x, param(beta, xc), param(thr, xc))


def _softplus_impl(x: Array, beta: Array, threshold: Array) -> Array:
    xc = up(x)
    z = beta * xc
    return jnp.where(z > threshold, xc, softplus0(z) / beta).astype(x.dtype)


_softplus = jax.custom_vjp(_softplus_impl)


# Save x: the derivative sigmoid(beta x) keeps its tail only when computed from x.
def _softplus_fwd(
    x: Array, beta: Array, threshold: Array
) -> tuple[Array, tuple[Array, Array, Array]]:
    return _softplus_impl(x, beta, threshold), (x, beta, threshold)


def _softplus_bwd(res: tuple[Array, Array, Array], g: Array) -> tuple[Array, Array, Array]:
    x, beta, threshold = res
    xc, gc = up(x), up(g)
    z = beta * xc
    lin = z > threshold
    gx = jnp.where(lin, gc, gc * lax.logistic(z))
    # Beyond the clamp both terms cancel exactly (x s(z) / beta - sp(z) / beta^2 -> 0); zeroing
    # z there keeps inf - inf out of the unused branch.
    far = jnp.abs(z) > _EXP_CLAMP
    zm = jnp.where(far, 0, z)
    gbeta = jnp.where(lin | far, 0, gc * (zm * lax.logistic(zm) - softplus0(zm)) / (beta * beta))
    return gx.astype(x.dtype), hyper_ct(gbeta, beta), jnp.zeros_like(threshold)


_softplus.defvjp(_softplus_fwd, _softplus_bwd)


def squareplus(x: ArrayLike, b: ArrayLike = 4) -> Array:
    r"""Squareplus: (x + sqrt(x^2 + b)) / 2, a softplus made of a square root.

    .. math:: f'(x) = \frac{1}{2}\left(1 + \frac{x}{\sqrt{x^2 + b}}\right), \quad
       \partial f / \partial b = \frac{1}{4 \sqrt{x^2 + b}}

    For x < 0 both are evaluated as b / (2 r (r - x)) with r = sqrt(x^2 + b), so the tail
    b / (4 x^2) survives where the textbook form cancels to 0.

    >>> import activations as A
    >>> float(A.squareplus(0.0)), float(jax.grad(A.squareplus)(0.0))
    (1.0, 0.5)

    Reference: Barron 2021, "Squareplus: A Softplus-Like Algebraic Rectifier".
    """
    x = as_float(x)
    return _squareplus(x, param(b, up(x)))


# Beyond |x| = 2^60, x^2 + b rounds to x^2 in every dtype computed here (for b < 2^60) and x^2
# nears float32's range: there r = |x| exactly.
_SQUAREPLUS_CAP = 2.0**60


def _squareplus_r(x: Array, b: Array) -> Array:
    """r = sqrt(x^2 + b) with one square root (no hypot), finite for every finite x."""
    ax = jnp.abs(x)
    cap = jnp.asarray(_SQUAREPLUS_CAP, x.dtype)
    return jnp.where(ax > cap, ax, jnp.sqrt(jnp.square(jnp.minimum(ax, cap)) + b))


def _squareplus_impl(x: Array, b: Array) -> Array:
    xc = up(x)
    r = _squareplus_r(xc, b)
    # x < 0: (x + r) / 2 = b / (2 (r - x)), which keeps the tail b / (4 x^2) instead of 0.
    y = jnp.where(xc >= 0, (xc + r) / 2, b / (2 * (r - xc)))
    # Past the cap f(x) = x to working precision, and x + r would overflow near the max.
    return jnp.where(xc > _SQUAREPLUS_CAP, xc, y).astype(x.dtype)


_squareplus = jax.custom_vjp(_squareplus_impl)


# Save x: the derivative is a function of x and b only.
def _squareplus_fwd(x: Array, b: Array) -> tuple[Array, tuple[Array, Array]]:
    return _squareplus_impl(x, b), (x, b)


def _squareplus_bwd(res: tuple[Array, Array], g: Array) -> tuple[Array, Array]:
    x, b = res
    xc, gc = up(x), up(g)
    r = _squareplus_r(xc, b)
    # x / r is sign(x) wherever r = |x| (|x| large, +-inf where it would be inf / inf, x = 0 = b).
    q = jnp.where(r == jnp.abs(xc), jnp.sign(xc), xc / r)
    gx = jnp.where(xc >= 0, (1 + q) / 2, b / (2 * r * (r - xc)))
    return (gc * gx).astype(x.dtype), hyper_ct(gc / (4 * r), b)


_squareplus.defvjp(_squareplus_fwd, _squareplus_bwd)

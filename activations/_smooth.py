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
    sigmoid_prime,
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


def _gelu_exact_impl(x):
    xc = up(x)
    return gated(xc, 0.5 * lax.erfc(-xc / math.sqrt(2))).astype(x.dtype)


_gelu_exact = jax.custom_vjp(_gelu_exact_impl)


# Save x: the derivative Phi(x) + x phi(x) is a function of x, not of the output.
def _gelu_exact_fwd(x):
    return _gelu_exact_impl(x), x


def _gelu_exact_bwd(x, g):
    xc = up(x)
    xm = jnp.clip(xc, -_GELU_CLAMP * 2, _GELU_CLAMP * 2)
    d = 0.5 * lax.erfc(-xc / math.sqrt(2)) + xm * _INV_SQRT_2PI * jnp.exp(-0.5 * xm * xm)
    return ((up(g) * d).astype(x.dtype),)


_gelu_exact.defvjp(_gelu_exact_fwd, _gelu_exact_bwd)


def _gelu_u2(x: Array) -> Array:
    """2u for the tanh form; (1 + tanh u) / 2 = sigmoid(2u)."""
    return 2 * _SQRT_2_OVER_PI * (x + _GELU_A * x * x * x)


def _gelu_tanh_impl(x):
    xc = up(x)
    return gated(xc, lax.logistic(_gelu_u2(jnp.clip(xc, -_GELU_CLAMP, _GELU_CLAMP)))).astype(
        x.dtype
    )


_gelu_tanh = jax.custom_vjp(_gelu_tanh_impl)


# Save x: the derivative needs x^2 and the gate at x.
def _gelu_tanh_fwd(x):
    return _gelu_tanh_impl(x), x


def _gelu_tanh_bwd(x, g):
    xm = jnp.clip(up(x), -_GELU_CLAMP, _GELU_CLAMP)
    z = _gelu_u2(xm)
    dz = 2 * _SQRT_2_OVER_PI * (1 + 3 * _GELU_A * xm * xm)
    d = lax.logistic(z) + xm * sigmoid_prime(z) * dz
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


def _silu_impl(x, beta):
    xc = up(x)
    return gated(xc, lax.logistic(beta * xc)).astype(x.dtype)


_silu = jax.custom_vjp(_silu_impl)


# Save x: sigmoid(beta x) and x both enter the derivative; x alone is the cheapest source.
def _silu_fwd(x, beta):
    return _silu_impl(x, beta), (x, beta)


def _silu_bwd(res, g):
    x, beta = res
    xc, gc = up(x), up(g)
    z = beta * xc
    # Outside |z| <= clamp, s'(z) is exactly 0: zero x there so that inf * 0 never happens.
    xm = jnp.where(jnp.abs(z) <= _EXP_CLAMP, xc, 0)
    sp = sigmoid_prime(beta * xm)
    gx = gc * (lax.logistic(z) + beta * xm * sp)
    gbeta = gc * xm * xm * sp
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


def _hard_silu_impl(x):
    xc = up(x)
    return gated(xc, jnp.clip(xc + 3, 0, 6) / 6).astype(x.dtype)


_hard_silu = jax.custom_vjp(_hard_silu_impl)


# Save x: inside (-3, 3) the derivative is linear in x.
def _hard_silu_fwd(x):
    return _hard_silu_impl(x), x


def _hard_silu_bwd(x, g):
    xc = up(x)
    d = jnp.where(xc <= -3, 0, jnp.where(xc >= 3, 1, (2 * xc + 3) / 6))
    return ((up(g) * d).astype(x.dtype),)


_hard_silu.defvjp(_hard_silu_fwd, _hard_silu_bwd)


def _mish_parts(x: Array) -> tuple[Array, Array]:
    """tanh(softplus(x)) and sech^2(softplus(x)), from one exp and without cancellation.

    With t = e^-|x|: for x > 0, tanh(sp) = (1 + 2t) / (1 + 2t + 2t^2); for x <= 0,
    tanh(sp) = n / (n + 2) with n = t (t + 2). 1 - tanh^2 is formed from the exact
    complements 2t^2 / D and 2 / (n + 2), so it keeps its tail.
    """
    t = jnp.exp(-jnp.abs(x))
    d_pos = 1 + 2 * t + 2 * t * t
    n = t * (t + 2)
    pos = x > 0
    gate = jnp.where(pos, (1 + 2 * t) / d_pos, n / (n + 2))
    one_minus = jnp.where(pos, 2 * t * t / d_pos, 2 / (n + 2))
    return gate, one_minus * (1 + gate)


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


def _mish_impl(x):
    xc = up(x)
    return gated(xc, _mish_parts(xc)[0]).astype(x.dtype)


_mish = jax.custom_vjp(_mish_impl)


# Save x: the derivative needs softplus(x) and sigmoid(x), both cheapest from x.
def _mish_fwd(x):
    return _mish_impl(x), x


def _mish_bwd(x, g):
    xc = up(x)
    gate, sech2_sp = _mish_parts(xc)
    xm = jnp.where(jnp.abs(xc) <= _EXP_CLAMP, xc, 0)
    d = gate + xm * sech2_sp * lax.logistic(xm)
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


def _softplus_impl(x, beta, threshold):
    xc = up(x)
    z = beta * xc
    return jnp.where(z > threshold, xc, softplus0(z) / beta).astype(x.dtype)


_softplus = jax.custom_vjp(_softplus_impl)


# Save x: the derivative sigmoid(beta x) keeps its tail only when computed from x.
def _softplus_fwd(x, beta, threshold):
    return _softplus_impl(x, beta, threshold), (x, beta, threshold)


def _softplus_bwd(res, g):
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

    For x < 0 both are evaluated as b / (2 r (r - x)) with r = hypot(x, sqrt b), so the tail
    b / (4 x^2) survives where the textbook form cancels to 0.

    >>> import activations as A
    >>> float(A.squareplus(0.0)), float(jax.grad(A.squareplus)(0.0))
    (1.0, 0.5)

    Reference: Barron 2021, "Squareplus: A Softplus-Like Algebraic Rectifier".
    """
    x = as_float(x)
    return _squareplus(x, param(b, up(x)))


def _squareplus_branches(x: Array, b: Array) -> tuple[Array, Array, Array, Array]:
    """(x, r) on each side of 0, with the unused side clamped to 0 so both stay finite.

    The positive side is also capped where x / r is already 1 to working precision, so that
    x = +inf gives 1 rather than inf / inf.
    """
    big = 1 / jnp.finfo(x.dtype).eps ** 2
    xp, xn = jnp.clip(x, 0, big), jnp.minimum(x, 0)
    sb = jnp.sqrt(b)
    return xp, jnp.hypot(xp, sb), xn, jnp.hypot(xn, sb)


def _squareplus_impl(x, b):
    xc = up(x)
    _, _, xn, rn = _squareplus_branches(xc, b)
    xp = jnp.maximum(xc, 0)
    # Halve before adding: x + r overflows for x above max / 2.
    y = jnp.where(xc >= 0, xp / 2 + jnp.hypot(xp, jnp.sqrt(b)) / 2, b / (2 * (rn - xn)))
    return y.astype(x.dtype)


_squareplus = jax.custom_vjp(_squareplus_impl)


# Save x: the derivative is a function of x and b only.
def _squareplus_fwd(x, b):
    return _squareplus_impl(x, b), (x, b)


def _squareplus_bwd(res, g):
    x, b = res
    xc, gc = up(x), up(g)
    xp, rp, xn, rn = _squareplus_branches(xc, b)
    gx = jnp.where(xc >= 0, (1 + xp / rp) / 2, b / (2 * rn * (rn - xn)))
    r = jnp.where(xc >= 0, rp, rn)
    return (gc * gx).astype(x.dtype), hyper_ct(gc / (4 * r), b)


_squareplus.defvjp(_squareplus_fwd, _squareplus_bwd)

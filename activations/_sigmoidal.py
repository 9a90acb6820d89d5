"""Bounded, S-shaped activations: sigmoid, tanh, their hard and soft variants."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ._common import Array, ArrayLike, as_float, sech2, sigmoid_prime, softplus0, up


def sigmoid(x: ArrayLike) -> Array:
    r"""Logistic sigmoid.

    .. math:: f(x) = \frac{1}{1 + e^{-x}}, \qquad f'(x) = f(x)\,(1 - f(x)) = \frac{t}{(1+t)^2},
       \; t = e^{-|x|}

    The derivative is at most 1/4 (at 0): every sigmoid layer shrinks the backward signal by at
    least 4x. Unlike ``jax.nn.sigmoid`` the derivative keeps its tail (``e^{-x}`` for large
    ``|x|``) instead of rounding to 0 once ``f(x)`` rounds to 1.

    >>> import activations as A
    >>> float(A.sigmoid(0.0)), float(jax.grad(A.sigmoid)(0.0))
    (0.5, 0.25)

    Reference: Rumelhart, Hinton, Williams 1986.
    """
    return _sigmoid(as_float(x))


def _sigmoid_impl(x: Array) -> Array:
    return lax.logistic(up(x)).astype(x.dtype)


_sigmoid = jax.custom_vjp(_sigmoid_impl)


# Save x, not the output: f(1 - f) from a saved f is 0 wherever f rounds to 1 (x > 17 in
# float32), and the tail is the whole point. Same bytes as saving f.
def _sigmoid_fwd(x: Array) -> tuple[Array, Array]:
    return _sigmoid_impl(x), x


def _sigmoid_bwd(x: Array, g: Array) -> tuple[Array]:
    return ((g * sigmoid_prime(up(x))).astype(x.dtype),)


_sigmoid.defvjp(_sigmoid_fwd, _sigmoid_bwd)


def tanh(x: ArrayLike) -> Array:
    r"""Hyperbolic tangent, zero-centred: tanh(x) = 2 sigmoid(2x) - 1.

    .. math:: f'(x) = 1 - \tanh^2 x = \frac{4t}{(1+t)^2}, \; t = e^{-2|x|}

    >>> import activations as A
    >>> float(jax.grad(A.tanh)(0.0))
    1.0

    Reference: LeCun et al. 1998, "Efficient BackProp".
    """
    return _tanh(as_float(x))


def _tanh_impl(x: Array) -> Array:
    return jnp.tanh(up(x)).astype(x.dtype)


_tanh = jax.custom_vjp(_tanh_impl)


# Save x for the same reason as sigmoid: 1 - y^2 from a saved y loses all relative precision
# once |x| > ~4 in float32 and is exactly 0 beyond ~9.
def _tanh_fwd(x: Array) -> tuple[Array, Array]:
    return _tanh_impl(x), x


def _tanh_bwd(x: Array, g: Array) -> tuple[Array]:
    return ((g * sech2(up(x))).astype(x.dtype),)


_tanh.defvjp(_tanh_fwd, _tanh_bwd)


def hard_tanh(x: ArrayLike) -> Array:
    r"""Hard tanh: clip(x, -1, 1).

    .. math:: f'(x) = 1 \text{ for } -1 \le x \le 1, \text{ else } 0 \quad (1 \text{ at the
       kinks, as in jax.nn})

    >>> import activations as A
    >>> A.hard_tanh(jnp.array([-2.0, 0.5, 2.0])).tolist()
    [-1.0, 0.5, 1.0]

    Reference: Collobert 2004.
    """
    return _hard_tanh(as_float(x))


def _hard_tanh_impl(x: Array) -> Array:
    return jnp.where(x > 1, 1, jnp.where(x < -1, -1, x)).astype(x.dtype)


_hard_tanh = jax.custom_vjp(_hard_tanh_impl)


# Save a bool mask: 1 byte per element instead of the input's 4.
def _hard_tanh_fwd(x: Array) -> tuple[Array, Array]:
    return _hard_tanh_impl(x), (x >= -1) & (x <= 1)


def _hard_tanh_bwd(mask: Array, g: Array) -> tuple[Array]:
    return (jnp.where(mask, g, jnp.zeros_like(g)),)


_hard_tanh.defvjp(_hard_tanh_fwd, _hard_tanh_bwd)


def hard_sigmoid(x: ArrayLike) -> Array:
    r"""Hard sigmoid: relu6(x + 3) / 6.

    .. math:: f'(x) = 1/6 \text{ for } -3 < x < 3, \text{ else } 0 \quad (0 \text{ at the kinks,
       as in jax.nn})

    >>> import activations as A
    >>> float(A.hard_sigmoid(0.0))
    0.5

    Reference: Howard et al. 2019, "Searching for MobileNetV3".
    """
    return _hard_sigmoid(as_float(x))


def _hard_sigmoid_impl(x: Array) -> Array:
    return (jnp.clip(up(x) + 3, 0, 6) / 6).astype(x.dtype)  # in float32, rounded once


_hard_sigmoid = jax.custom_vjp(_hard_sigmoid_impl)


# Save a bool mask: the derivative is a constant 1/6 inside (-3, 3).
def _hard_sigmoid_fwd(x: Array) -> tuple[Array, Array]:
    return _hard_sigmoid_impl(x), (x > -3) & (x < 3)


def _hard_sigmoid_bwd(mask: Array, g: Array) -> tuple[Array]:
    return (jnp.where(mask, g / 6, jnp.zeros_like(g)),)


_hard_sigmoid.defvjp(_hard_sigmoid_fwd, _hard_sigmoid_bwd)


def soft_sign(x: ArrayLike) -> Array:
    r"""Softsign: x / (1 + |x|).

    .. math:: f'(x) = \frac{1}{(1 + |x|)^2}

    Polynomial rather than exponential tails: saturates more slowly than tanh. Gives +-1 at
    +-inf (``jax.nn.soft_sign`` gives NaN there: inf / inf).

    >>> import activations as A
    >>> float(A.soft_sign(1.0))
    0.5

    Reference: Bergstra et al. 2009; Glorot & Bengio 2010.
    """
    return _soft_sign(as_float(x))


def _soft_sign_impl(x: Array) -> Array:
    xc = up(x)
    y = jnp.where(jnp.isinf(xc), jnp.sign(xc), xc / (1 + jnp.abs(xc)))
    return y.astype(x.dtype)


_soft_sign = jax.custom_vjp(_soft_sign_impl)


# Save x: the derivative needs |x|, which the output gives only through a division.
def _soft_sign_fwd(x: Array) -> tuple[Array, Array]:
    return _soft_sign_impl(x), x


def _soft_sign_bwd(x: Array, g: Array) -> tuple[Array]:
    return ((g / jnp.square(1 + jnp.abs(up(x)))).astype(x.dtype),)


_soft_sign.defvjp(_soft_sign_fwd, _soft_sign_bwd)


def log_sigmoid(x: ArrayLike) -> Array:
    r"""Log-sigmoid: log(sigmoid(x)) = -softplus(-x).

    .. math:: f'(x) = \text{sigmoid}(-x)

    >>> import activations as A
    >>> round(float(A.log_sigmoid(0.0)), 6)
    -0.693147
    """
    return _log_sigmoid(as_float(x))


def _log_sigmoid_impl(x: Array) -> Array:
    return (-softplus0(-up(x))).astype(x.dtype)


_log_sigmoid = jax.custom_vjp(_log_sigmoid_impl)


# Save x: sigmoid(-x) from a saved log-sigmoid would need an exp and loses the x > 0 tail.
def _log_sigmoid_fwd(x: Array) -> tuple[Array, Array]:
    return _log_sigmoid_impl(x), x


def _log_sigmoid_bwd(x: Array, g: Array) -> tuple[Array]:
    return ((g * lax.logistic(-up(x))).astype(x.dtype),)


_log_sigmoid.defvjp(_log_sigmoid_fwd, _log_sigmoid_bwd)

"""Rectifiers: ReLU and its variants, piecewise linear or with an exponential negative part."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._common import Array, ArrayLike, as_float, gated, hyper_ct, param, up

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946


def relu(x: ArrayLike) -> Array:
    r"""Rectified linear unit: max(x, 0).

    .. math:: f'(x) = 1 \text{ for } x > 0, \text{ else } 0 \quad (f'(0) = 0, \text{ as in jax.nn})

    Passes the gradient unchanged where a unit is active and blocks it where it is not: no
    attenuation, but a unit whose input is negative on every example never learns (dead ReLU).

    >>> import activations as A
    >>> A.relu(jnp.array([-1.0, 0.0, 2.0])).tolist(), float(jax.grad(A.relu)(0.0))
    ([0.0, 0.0, 2.0], 0.0)

    Reference: Nair & Hinton 2010; Glorot, Bordes, Bengio 2011.
    """
    return _relu(as_float(x))


def _relu_impl(x: Array) -> Array:
    return jnp.maximum(x, 0)


_relu = jax.custom_vjp(_relu_impl)


# Save a bool mask: 1 byte per element instead of 4 (x itself is not needed).
def _relu_fwd(x: Array) -> tuple[Array, Array]:
    return _relu_impl(x), x > 0


def _relu_bwd(mask: Array, g: Array) -> tuple[Array]:
    return (jnp.where(mask, g, jnp.zeros_like(g)),)


_relu.defvjp(_relu_fwd, _relu_bwd)


def relu6(x: ArrayLike) -> Array:
    r"""ReLU capped at 6: min(max(x, 0), 6).

    .. math:: f'(x) = 1 \text{ for } 0 < x < 6, \text{ else } 0 \quad (0 \text{ at both kinks,
       as in jax.nn})

    >>> import activations as A
    >>> A.relu6(jnp.array([-1.0, 3.0, 9.0])).tolist()
    [0.0, 3.0, 6.0]

    Reference: Krizhevsky 2010, "Convolutional Deep Belief Networks on CIFAR-10".
    """
    return _relu6(as_float(x))


def _relu6_impl(x: Array) -> Array:
    return jnp.minimum(jnp.maximum(x, 0), 6)


_relu6 = jax.custom_vjp(_relu6_impl)


# Save a bool mask of the linear region.
def _relu6_fwd(x: Array) -> tuple[Array, Array]:
    return _relu6_impl(x), (x > 0) & (x < 6)


_relu6.defvjp(_relu6_fwd, _relu_bwd)


def leaky_relu(x: ArrayLike, negative_slope: ArrayLike = 0.01) -> Array:
    r"""Leaky ReLU: x for x >= 0, negative_slope * x otherwise.

    .. math:: f'(x) = 1 \text{ for } x \ge 0, \text{ else negative\_slope} \quad (f'(0) = 1,
       \text{ as in jax.nn})

    A Python-number slope is a constant and the backward pass saves only a bool mask; an array
    slope (traced, vmapped, learned) is differentiable and behaves exactly like :func:`prelu`.

    >>> import activations as A
    >>> A.leaky_relu(jnp.array([-2.0, 3.0]), negative_slope=0.5).tolist()
    [-1.0, 3.0]

    Reference: Maas, Hannun, Ng 2013.
    """
    x = as_float(x)
    if isinstance(negative_slope, int | float) and not isinstance(negative_slope, bool):
        return _leaky_relu_const(x, float(negative_slope))
    return _prelu(x, param_like(negative_slope, x))


def _leaky_relu_const_impl(x: Array, slope: float) -> Array:
    return jnp.where(x >= 0, x, (slope * up(x)).astype(x.dtype))


_leaky_relu_const = jax.custom_vjp(_leaky_relu_const_impl, nondiff_argnums=(1,))


# Constant slope: save a bool mask, 1 byte per element.
def _leaky_relu_const_fwd(x: Array, slope: float) -> tuple[Array, Array]:
    return _leaky_relu_const_impl(x, slope), x >= 0


def _leaky_relu_const_bwd(slope: float, mask: Array, g: Array) -> tuple[Array]:
    return (jnp.where(mask, g, (slope * up(g)).astype(g.dtype)),)


_leaky_relu_const.defvjp(_leaky_relu_const_fwd, _leaky_relu_const_bwd)


def param_like(p: ArrayLike, x: Array) -> Array:
    """A learnable hyperparameter as an array: keeps its own float dtype, else takes x's."""
    p = jnp.asarray(p)
    return p if jnp.issubdtype(p.dtype, jnp.floating) else p.astype(x.dtype)


def prelu(x: ArrayLike, negative_slope: ArrayLike = 0.25) -> Array:
    r"""Parametric ReLU: leaky ReLU whose slope is learned.

    ``negative_slope`` broadcasts against ``x`` (a scalar, or one slope per channel with shape
    ``(C,)`` for channels-last inputs) and gets a gradient: the sum over the broadcast axes of
    ``g * min(x, 0)``. Initialise it with :func:`prelu_init` (0.25, as in He et al.).

    .. math:: f'(x) = 1 \text{ for } x \ge 0, \text{ else } a; \qquad
       \partial f / \partial a = \min(x, 0)

    >>> import activations as A
    >>> a = A.prelu_init((2,))
    >>> A.prelu(jnp.array([[-4.0, 4.0]]), a).tolist()
    [[-1.0, 4.0]]
    >>> jax.grad(lambda a: A.prelu(jnp.array([[-4.0, 4.0]]), a).sum())(a).tolist()
    [-4.0, 0.0]

    Reference: He, Zhang, Ren, Sun 2015, "Delving Deep into Rectifiers".
    """
    x = as_float(x)
    return _prelu(x, param_like(negative_slope, x))


def prelu_init(shape: tuple[int, ...] = (), dtype: jnp.dtype = jnp.float32) -> Array:
    """Initial PReLU slope: 0.25 everywhere (He et al. 2015)."""
    return jnp.full(shape, 0.25, dtype)


def _prelu_impl(x: Array, a: Array) -> Array:
    return jnp.where(x >= 0, x, (up(a) * up(x)).astype(x.dtype))


_prelu = jax.custom_vjp(_prelu_impl)


# Save x (and the slope): the slope's gradient needs the negative part of x, not just a mask.
def _prelu_fwd(x: Array, a: Array) -> tuple[Array, tuple[Array, Array]]:
    return _prelu_impl(x, a), (x, a)


def _prelu_bwd(res: tuple[Array, Array], g: Array) -> tuple[Array, Array]:
    x, a = res
    pos = x >= 0
    gx = jnp.where(pos, g, (up(a) * up(g)).astype(g.dtype))
    ga = jnp.where(pos, 0, up(g) * up(x))
    return gx, hyper_ct(ga, a)


_prelu.defvjp(_prelu_fwd, _prelu_bwd)


def elu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Exponential linear unit: x for x > 0, alpha (e^x - 1) otherwise.

    .. math:: f'(x) = 1 \text{ for } x > 0, \text{ else } \alpha e^x \quad (f'(0) = \alpha,
       \text{ as in jax.nn})

    The derivative is computed as ``alpha * exp(x)``, not ``f(x) + alpha``: the latter is 0 in
    float32 for x < -17, although the true value is e^x.

    >>> import activations as A
    >>> print(f"{jax.grad(A.elu)(-20.0):.4e}")  # e^-20; jax.nn.elu gives 0.0
    2.0612e-09

    Reference: Clevert, Unterthiner, Hochreiter 2015.
    """
    x = as_float(x)
    return _elu(x, param(alpha, up(x)))


def _elu_impl(x: Array, alpha: Array) -> Array:
    xc = up(x)
    # expm1 of where(x > 0, 0, x): the unused branch must stay finite or its inf poisons grads.
    neg = alpha * jnp.expm1(jnp.where(xc > 0, 0, xc))
    return jnp.where(xc > 0, xc, neg).astype(x.dtype)


_elu = jax.custom_vjp(_elu_impl)


# Save x: the tail derivative alpha e^x cannot be recovered from the output (f + alpha
# cancels), and alpha's gradient e^x - 1 needs x too.
def _elu_fwd(x: Array, alpha: Array) -> tuple[Array, tuple[Array, Array]]:
    return _elu_impl(x, alpha), (x, alpha)


def _elu_bwd(res: tuple[Array, Array], g: Array) -> tuple[Array, Array]:
    x, alpha = res
    xc, gc = up(x), up(g)
    pos = xc > 0
    xn = jnp.where(pos, 0, xc)
    gx = jnp.where(pos, gc, gc * alpha * jnp.exp(xn))
    galpha = jnp.where(pos, 0, gc * jnp.expm1(xn))
    return gx.astype(x.dtype), hyper_ct(galpha, alpha)


_elu.defvjp(_elu_fwd, _elu_bwd)


def celu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Continuously differentiable ELU: max(x, 0) + min(0, alpha (e^{x / alpha} - 1)).

    .. math:: f'(x) = 1 \text{ for } x > 0, \text{ else } e^{x/\alpha} \quad (f'(0) = 1)

    >>> import activations as A
    >>> round(float(A.celu(-1.0, alpha=2.0)), 6)
    -0.786939

    Reference: Barron 2017, "Continuously Differentiable Exponential Linear Units".
    """
    x = as_float(x)
    return _celu(x, param(alpha, up(x)))


def _celu_impl(x: Array, alpha: Array) -> Array:
    xc = up(x)
    neg = alpha * jnp.expm1(jnp.where(xc > 0, 0, xc) / alpha)
    return jnp.where(xc > 0, xc, neg).astype(x.dtype)


_celu = jax.custom_vjp(_celu_impl)


# Save x: as for elu, the e^{x/alpha} tail and alpha's gradient need it.
def _celu_fwd(x: Array, alpha: Array) -> tuple[Array, tuple[Array, Array]]:
    return _celu_impl(x, alpha), (x, alpha)


def _celu_bwd(res: tuple[Array, Array], g: Array) -> tuple[Array, Array]:
    x, alpha = res
    xc, gc = up(x), up(g)
    pos = xc > 0
    u = jnp.where(pos, 0, xc) / alpha
    e = jnp.exp(u)
    gx = jnp.where(pos, gc, gc * e)
    # d/dalpha [alpha (e^u - 1)] with u = x / alpha: (e^u - 1) - u e^u.
    galpha = jnp.where(pos, 0, gc * (jnp.expm1(u) - gated(u, e)))
    return gx.astype(x.dtype), hyper_ct(galpha, alpha)


_celu.defvjp(_celu_fwd, _celu_bwd)


def selu(x: ArrayLike) -> Array:
    r"""Scaled ELU: lambda * elu(x, alpha) with Klambauer et al.'s constants.

    With alpha = 1.6733 and lambda = 1.0507, N(0, 1) inputs give outputs of mean 0 and
    variance 1, so with LeCun-normal weights the activations stay at that fixed point layer
    after layer.

    .. math:: f'(x) = \lambda \text{ for } x > 0, \text{ else } \lambda \alpha e^x \quad
       (f'(0) = \lambda\alpha \approx 1.7581, \text{ as in jax.nn})

    >>> import activations as A
    >>> round(float(A.selu(1.0)), 6)
    1.050701

    Reference: Klambauer, Unterthiner, Mayr, Hochreiter 2017.
    """
    return _selu(as_float(x))


def _selu_impl(x: Array) -> Array:
    xc = up(x)
    neg = SELU_ALPHA * jnp.expm1(jnp.where(xc > 0, 0, xc))
    return (SELU_LAMBDA * jnp.where(xc > 0, xc, neg)).astype(x.dtype)


_selu = jax.custom_vjp(_selu_impl)


# Save x: the negative-side derivative lambda alpha e^x keeps its tail (see elu).
def _selu_fwd(x: Array) -> tuple[Array, Array]:
    return _selu_impl(x), x


def _selu_bwd(x: Array, g: Array) -> tuple[Array]:
    xc = up(x)
    d = jnp.where(xc > 0, SELU_LAMBDA, SELU_LAMBDA * SELU_ALPHA * jnp.exp(jnp.minimum(xc, 0)))
    return ((up(g) * d).astype(x.dtype),)


_selu.defvjp(_selu_fwd, _selu_bwd)


def identity(x: ArrayLike) -> Array:
    r"""Identity (linear unit): f(x) = x, f'(x) = 1.

    The baseline with no nonlinearity: a deep linear network, whose gradients neither vanish
    nor explode at sigma_w = 1.

    >>> import activations as A
    >>> float(jax.grad(A.identity)(3.0))
    1.0
    """
    return _identity(as_float(x))


def _identity_impl(x: Array) -> Array:
    return x


_identity = jax.custom_vjp(_identity_impl)


# Nothing to save: the derivative is 1.
def _identity_fwd(x: Array) -> tuple[Array, None]:
    return x, None


def _identity_bwd(_: None, g: Array) -> tuple[Array]:
    return (g,)


_identity.defvjp(_identity_fwd, _identity_bwd)

"""Fused output nodes: an output nonlinearity and its cross-entropy in one node.

Composed, sigmoid followed by binary cross-entropy differentiates through log(sigmoid(x)),
which overflows for large |x|; fused, the gradient with respect to the logits is simply
``y_hat - y``, bounded by 1 in magnitude. These match optax's functions in value and
signature (per-example losses, no reduction).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ._common import Array, ArrayLike, as_float, softplus0, up


def sigmoid_binary_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Array:
    r"""Elementwise binary cross-entropy of ``sigmoid(logits)`` against ``labels`` in [0, 1].

    .. math:: L = \mathrm{softplus}(x) - y x, \qquad \partial L/\partial x = \sigma(x) - y,
       \qquad \partial L/\partial y = -x

    Finite for logits of +-1e4 (the composed ``-y log sigmoid(x)`` is inf there).

    >>> import activations as A
    >>> x, y = jnp.array([3.0, -1e4]), jnp.array([1.0, 0.0])
    >>> g = jax.grad(lambda x: A.sigmoid_binary_cross_entropy(x, y).sum())(x)
    >>> [round(v, 4) for v in g.tolist()]  # sigmoid(x) - y
    [-0.0474, 0.0]
    """
    logits = as_float(logits)
    labels = jnp.asarray(labels).astype(logits.dtype)
    return _sigmoid_bce(logits, labels)


def _sigmoid_bce_impl(x: Array, y: Array) -> Array:
    xc = up(x)
    return (softplus0(xc) - up(y) * xc).astype(x.dtype)


_sigmoid_bce = jax.custom_vjp(_sigmoid_bce_impl)


# Save logits and labels: y_hat = sigmoid(x) is recomputed in the backward pass, which costs
# one exp and keeps the label gradient (-x) available.
def _sigmoid_bce_fwd(x: Array, y: Array) -> tuple[Array, tuple[Array, Array]]:
    return _sigmoid_bce_impl(x, y), (x, y)


def _sigmoid_bce_bwd(res: tuple[Array, Array], g: Array) -> tuple[Array, Array]:
    x, y = res
    xc, gc = up(x), up(g)
    return (gc * (lax.logistic(xc) - up(y))).astype(x.dtype), (-gc * xc).astype(y.dtype)


_sigmoid_bce.defvjp(_sigmoid_bce_fwd, _sigmoid_bce_bwd)


def softmax_cross_entropy(logits: ArrayLike, labels: ArrayLike, axis: int = -1) -> Array:
    r"""Cross-entropy of ``softmax(logits)`` against a label distribution, reduced over ``axis``.

    .. math:: L = -\sum_k y_k \log \mathrm{softmax}(x)_k, \qquad
       \partial L/\partial x = \hat y \textstyle\sum_k y_k - y \;(= \hat y - y \text{ for
       normalised labels}), \qquad \partial L / \partial y = -\log \hat y

    >>> import activations as A
    >>> x, y = jnp.array([[2.0, 0.0, -1e4]]), jnp.array([[1.0, 0.0, 0.0]])
    >>> g = jax.grad(lambda x: A.softmax_cross_entropy(x, y).sum())(x)
    >>> [round(v, 4) for v in g[0].tolist()]  # softmax(x) - y
    [-0.1192, 0.1192, 0.0]
    """
    logits = as_float(logits)
    labels = jnp.asarray(labels).astype(logits.dtype)
    return _softmax_ce(logits, labels, axis % logits.ndim)


def _log_softmax(x: Array, axis: int) -> Array:
    # Subtracting the max keeps exp finite; the max itself gets no gradient here because
    # the result is invariant to it.
    shifted = x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


def _softmax_ce_impl(x: Array, y: Array, axis: int) -> Array:
    return (-jnp.sum(up(y) * _log_softmax(up(x), axis), axis=axis)).astype(x.dtype)


_softmax_ce = jax.custom_vjp(_softmax_ce_impl, nondiff_argnums=(2,))


# Save log_softmax (one array the size of the logits) and the labels: y_hat = exp(log y_hat)
# gives the logit gradient and -log y_hat the label gradient.
def _softmax_ce_fwd(x: Array, y: Array, axis: int) -> tuple[Array, tuple[Array, Array]]:
    logp = _log_softmax(up(x), axis)
    loss = (-jnp.sum(up(y) * logp, axis=axis)).astype(x.dtype)
    return loss, (logp.astype(x.dtype), y)


def _softmax_ce_bwd(axis: int, res: tuple[Array, Array], g: Array) -> tuple[Array, Array]:
    logp, y = res
    lp, yc = up(logp), up(y)
    gk = jnp.expand_dims(up(g), axis)
    gx = gk * (jnp.exp(lp) * jnp.sum(yc, axis=axis, keepdims=True) - yc)
    return gx.astype(logp.dtype), (-gk * lp).astype(y.dtype)


_softmax_ce.defvjp(_softmax_ce_fwd, _softmax_ce_bwd)


def softmax_cross_entropy_with_integer_labels(
    logits: ArrayLike, labels: ArrayLike, axis: int = -1
) -> Array:
    r"""Cross-entropy of ``softmax(logits)`` against integer class labels.

    .. math:: L = -\log \mathrm{softmax}(x)_{y}, \qquad \partial L/\partial x = \hat y -
       \mathrm{onehot}(y)

    >>> import activations as A
    >>> x = jnp.array([[0.0, 0.0]])
    >>> round(float(A.softmax_cross_entropy_with_integer_labels(x, jnp.array([1]))[0]), 6)
    0.693147
    """
    logits = as_float(logits)
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    axis = axis % logits.ndim
    return _softmax_ce_int(logits, labels, axis)


def _pick(logp: Array, labels: Array, axis: int) -> Array:
    return jnp.take_along_axis(logp, jnp.expand_dims(labels, axis), axis=axis).squeeze(axis)


def _softmax_ce_int_impl(x: Array, labels: Array, axis: int) -> Array:
    return (-_pick(_log_softmax(up(x), axis), labels, axis)).astype(x.dtype)


_softmax_ce_int = jax.custom_vjp(_softmax_ce_int_impl, nondiff_argnums=(2,))


# Save log_softmax and the integer labels (4 bytes per example, not a one-hot array).
def _softmax_ce_int_fwd(x: Array, labels: Array, axis: int) -> tuple[Array, tuple[Array, Array]]:
    logp = _log_softmax(up(x), axis)
    return (-_pick(logp, labels, axis)).astype(x.dtype), (logp.astype(x.dtype), labels)


def _softmax_ce_int_bwd(axis: int, res: tuple[Array, Array], g: Array) -> tuple[Array, None]:
    logp, labels = res
    onehot = jax.nn.one_hot(labels, logp.shape[axis], dtype=up(logp).dtype, axis=axis)
    gx = jnp.expand_dims(up(g), axis) * (jnp.exp(up(logp)) - onehot)
    return gx.astype(logp.dtype), None  # integer labels have no cotangent


_softmax_ce_int.defvjp(_softmax_ce_int_fwd, _softmax_ce_int_bwd)

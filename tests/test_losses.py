"""Fused loss nodes against the composed graph, optax, and the exact limits.

The composed references are plain jnp and are evaluated in float64 from the same inputs (the
composed float32 graph is itself the less accurate side: log(1 - sigmoid(x)) cancels), so the
library is held to the tolerance of its own dtype. optax is compared in the library's dtype.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _utils import FAST_COMPILE, assert_trees_close, dtype_context, grad_tol, value_tol, x64

import activations as A

# Compile time is the whole cost of these tests: skip LLVM's expensive passes (see _utils).
jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)

FLOATS = (jnp.float32, jnp.float64)
_ids = lambda d: jnp.dtype(d).name

# --------------------------------------------------------------------------- composed graphs


def composed_bce(x, y):
    s = jax.nn.sigmoid(x)
    return -y * jnp.log(s) - (1 - y) * jnp.log(1 - s)


def composed_bce_stable(x, y):
    """The same composition through log_sigmoid: no cancellation, the float64 reference."""
    return -y * jax.nn.log_sigmoid(x) - (1 - y) * jax.nn.log_sigmoid(-x)


def composed_ce(x, y, axis=-1):
    return -jnp.sum(y * jax.nn.log_softmax(x, axis=axis), axis=axis)


def composed_ce_int(x, labels, axis=-1):
    onehot = jax.nn.one_hot(labels, x.shape[axis], dtype=x.dtype, axis=axis)
    return composed_ce(x, onehot, axis)


def _value_and_grads(loss, x, y, argnums=(0, 1)):
    """Loss per example and gradients of its sum w.r.t. ``argnums``, in one jitted call (one
    compile instead of one per eager op keeps this file fast on CPU)."""

    def vg(x, y):
        return loss(x, y), jax.grad(lambda x, y: loss(x, y).sum(), argnums=argnums)(x, y)

    return jit(vg)(x, y)


def _in64(fn, *args):
    """``fn`` on ``args`` widened to float64 (integers kept): the accurate reference."""
    with x64():
        args = [a if jnp.issubdtype(a.dtype, jnp.integer) else a.astype(jnp.float64) for a in args]
        return jax.tree_util.tree_map(np.asarray, fn(*args))


def _np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _data(dtype, shape=(4, 5), scale=2.0, seed=0):
    """Moderate logits, a label distribution (rows sum to 1), and integer labels (numpy data:
    no eager jax ops, so no per-op compiles)."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(scale * rng.normal(size=shape), dtype)
    y = jnp.asarray(_np_softmax(rng.normal(size=shape)), dtype)
    labels = jnp.asarray(rng.integers(0, shape[-1], shape[:-1]), jnp.int32)
    return x, y, labels


def _bce_data(dtype, shape=(64,), seed=0):
    rng = np.random.default_rng(seed)
    return (
        jnp.asarray(2.0 * rng.normal(size=shape), dtype),
        jnp.asarray(rng.uniform(size=shape), dtype),
    )


# --------------------------------------------------------------------------- value and gradient


@pytest.mark.parametrize("dtype", FLOATS, ids=_ids)
def test_bce_matches_composed_and_optax(dtype):
    """Value, d/dlogits and d/dlabels equal the composed graph (float64) and optax."""
    with dtype_context(dtype):
        x, y = _bce_data(dtype)
        got = _value_and_grads(A.sigmoid_binary_cross_entropy, x, y)
        # float32 against the textbook graph evaluated in float64; float64 against the same
        # composition through log_sigmoid (log(1 - s) itself is off by ~1e-15 in float64).
        composed = composed_bce if dtype == jnp.float32 else composed_bce_stable
        ref = _in64(lambda x, y: _value_and_grads(composed, x, y), x, y)
        opt = _value_and_grads(optax.sigmoid_binary_cross_entropy, x, y)
    assert got[0].dtype == got[1][0].dtype == got[1][1].dtype == jnp.dtype(dtype)
    assert_trees_close(got[0], ref[0], rtol=value_tol(dtype), err_msg="value vs composed")
    assert_trees_close(got[1], ref[1], rtol=grad_tol(dtype), err_msg="grads vs composed")
    assert_trees_close(got[0], opt[0], rtol=value_tol(dtype), err_msg="value vs optax")
    assert_trees_close(got[1], opt[1], rtol=grad_tol(dtype), err_msg="grads vs optax")


@pytest.mark.parametrize("dtype", FLOATS, ids=_ids)
def test_softmax_ce_matches_composed_and_optax(dtype):
    with dtype_context(dtype):
        x, y, _ = _data(dtype)
        got = _value_and_grads(A.softmax_cross_entropy, x, y)
        ref = _in64(lambda x, y: _value_and_grads(composed_ce, x, y), x, y)
        opt = _value_and_grads(optax.softmax_cross_entropy, x, y)
    assert got[0].shape == (4,) and got[0].dtype == jnp.dtype(dtype)
    assert_trees_close(got[0], ref[0], rtol=value_tol(dtype), err_msg="value vs composed")
    assert_trees_close(got[1], ref[1], rtol=grad_tol(dtype), err_msg="grads vs composed")
    assert_trees_close(got[0], opt[0], rtol=value_tol(dtype), err_msg="value vs optax")
    assert_trees_close(got[1], opt[1], rtol=grad_tol(dtype), err_msg="grads vs optax")


@pytest.mark.parametrize("dtype", FLOATS, ids=_ids)
def test_integer_labels_match_composed_and_optax(dtype):
    loss = A.softmax_cross_entropy_with_integer_labels
    with dtype_context(dtype):
        x, _, labels = _data(dtype)
        got = _value_and_grads(loss, x, labels, argnums=0)
        ref = _in64(lambda x, t: _value_and_grads(composed_ce_int, x, t, argnums=0), x, labels)
        opt = _value_and_grads(optax.softmax_cross_entropy_with_integer_labels, x, labels, 0)
    assert_trees_close(got[0], ref[0], rtol=value_tol(dtype), err_msg="value vs composed")
    assert_trees_close(got[1], ref[1], rtol=grad_tol(dtype), err_msg="grad vs composed")
    assert_trees_close(got, opt, rtol=value_tol(dtype), err_msg="vs optax")


def _grad_sum(loss, x, *rest):
    """Gradient of ``loss(x, *rest).sum()`` w.r.t. x, jitted."""
    return jit(jax.grad(lambda x, *rest: loss(x, *rest).sum()))(x, *rest)


@pytest.mark.parametrize("dtype", FLOATS, ids=_ids)
def test_logit_gradient_is_prediction_minus_label(dtype):
    """The fused gradients are the formulas themselves: sigmoid(x) - y, softmax(x) - y, and
    softmax(x) * sum(y) - y for labels that do not sum to 1."""
    tol = value_tol(dtype)
    with dtype_context(dtype):
        x, y = _bce_data(dtype)
        g = _grad_sum(A.sigmoid_binary_cross_entropy, x, y)
        want = jit(lambda x, y: jax.nn.sigmoid(x) - y)(x, y)
        assert_trees_close(g, want, rtol=tol, err_msg="bce")
        x, y, labels = _data(dtype)
        g = _grad_sum(A.softmax_cross_entropy, x, y)
        p = jit(jax.nn.softmax)(x)
        assert_trees_close(g, p - y, rtol=tol, err_msg="softmax ce")
        y2 = 3 * y  # unnormalised: rows sum to 3
        g = _grad_sum(A.softmax_cross_entropy, x, y2)
        assert_trees_close(g, 3 * p - y2, rtol=tol, err_msg="unnormalised")
        g2 = _in64(lambda x, y: _grad_sum(composed_ce, x, y), x, y2)
        assert_trees_close(g, g2, rtol=grad_tol(dtype), err_msg="unnormalised vs composed")
        g = _grad_sum(A.softmax_cross_entropy_with_integer_labels, x, labels)
        onehot = np.eye(x.shape[-1])[labels]
        assert_trees_close(g, p - onehot, rtol=tol, err_msg="integer labels")


def test_label_gradients():
    """d/dlabels: -x for BCE, -log_softmax(x) for softmax CE (float64, exact formulas)."""
    with x64():
        x, y = _bce_data(jnp.float64)
        _, gy = _value_and_grads(A.sigmoid_binary_cross_entropy, x, y, argnums=1)
        assert_trees_close(gy, -x, rtol=1e-15)
        x, y, _ = _data(jnp.float64)
        _, gy = _value_and_grads(A.softmax_cross_entropy, x, y, argnums=1)
        xn = np.asarray(x)
        log_p = xn - xn.max(-1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
        assert_trees_close(gy, -log_p, rtol=1e-14)


# --------------------------------------------------------------------------- extreme logits

_BIG = 1e4


@pytest.mark.parametrize("dtype", FLOATS, ids=_ids)
def test_bce_exact_limits_at_huge_logits(dtype):
    """BCE(x, y) = softplus(x) - y x: at x = +-1e4 the values and gradients are exact."""
    with dtype_context(dtype):
        x = jnp.array([_BIG, -_BIG, _BIG, -_BIG], dtype)
        y = jnp.array([0.0, 0.0, 1.0, 1.0], dtype)
        loss, (gx, gy) = _value_and_grads(A.sigmoid_binary_cross_entropy, x, y)
    np.testing.assert_array_equal(loss, [_BIG, 0.0, 0.0, _BIG])
    np.testing.assert_array_equal(gx, [1.0, 0.0, 0.0, -1.0])
    np.testing.assert_array_equal(gy, [-_BIG, _BIG, -_BIG, _BIG])


@pytest.mark.parametrize("dtype", FLOATS, ids=_ids)
@pytest.mark.parametrize("integer", [False, True], ids=["onehot", "integer"])
def test_softmax_ce_exact_limits_at_huge_logits(dtype, integer):
    with dtype_context(dtype):
        x = jnp.broadcast_to(jnp.array([_BIG, -_BIG, 0.0], dtype), (3, 3))
        labels = jnp.arange(3)
        onehot = jax.nn.one_hot(labels, 3, dtype=dtype)
        if integer:
            fn = lambda x: A.softmax_cross_entropy_with_integer_labels(x, labels)
        else:
            fn = lambda x: A.softmax_cross_entropy(x, onehot)
        loss, gx = _value_and_grads(lambda x, _: fn(x), x, None, argnums=0)
    np.testing.assert_array_equal(loss, [0.0, 2 * _BIG, _BIG])
    np.testing.assert_array_equal(gx, np.array([[1.0, 0.0, 0.0]] * 3) - np.eye(3))


# --------------------------------------------------------------------------- shapes, transforms


def test_batch_shapes_and_other_axis():
    """Classes on axis 1 of a (2, 5, 3) batch equal classes on the last axis after moveaxis."""
    x, y, _ = _data(jnp.float32, shape=(2, 3, 5))
    labels = jnp.asarray(np.random.default_rng(1).integers(0, 5, (2, 3)), jnp.int32)
    xm, ym = (jnp.asarray(np.moveaxis(np.asarray(a), -1, 1)) for a in (x, y))  # (2, 5, 3)
    back = lambda tree: jax.tree_util.tree_map(lambda a: np.moveaxis(np.asarray(a), -1, 1), tree)
    ce = lambda x, y, axis=-1: A.softmax_cross_entropy(x, y, axis=axis)
    got = _value_and_grads(lambda x, y: ce(x, y, axis=1), xm, ym)
    want = _value_and_grads(ce, x, y)
    assert got[0].shape == (2, 3)
    assert_trees_close(got[0], want[0], rtol=1e-6)
    assert_trees_close(got[1], back(want[1]), rtol=1e-6)
    ce_int = A.softmax_cross_entropy_with_integer_labels
    got = _value_and_grads(lambda x, t: ce_int(x, t, axis=1), xm, labels, argnums=0)
    want = _value_and_grads(ce_int, x, labels, argnums=0)
    assert_trees_close(got, (want[0], back(want[1])), rtol=1e-6)
    opt = jit(optax.softmax_cross_entropy_with_integer_labels, static_argnums=2)(xm, labels, 1)
    assert_trees_close(got[0], opt, rtol=1e-6)
    # BCE is elementwise: any batch shape, including a scalar.
    xb, yb = _bce_data(jnp.float32, shape=(2, 3, 4))
    bce = jit(A.sigmoid_binary_cross_entropy)
    assert bce(xb, yb).shape == (2, 3, 4)
    assert bce(0.0, 1.0).shape == ()


@pytest.mark.parametrize(
    "name", ["sigmoid_binary_cross_entropy", "softmax_cross_entropy", "integer_labels"]
)
def test_vmap_and_jit_match_batched_call(name):
    x, y, labels = _data(jnp.float32, shape=(6, 5))
    if name == "integer_labels":
        loss, second = A.softmax_cross_entropy_with_integer_labels, labels
    else:
        loss, second = getattr(A, name), y
    vg = lambda x, t: (loss(x, t), jax.grad(lambda x: loss(x, t).sum())(x))

    @jit
    def transformed(x, t):
        return vg(x, t), jax.vmap(vg)(x, t)

    want = vg(x, second)  # the plain batched call, eager
    got_jit, got_vmap = transformed(x, second)
    assert_trees_close(got_jit, want, rtol=1e-6, err_msg="jit")
    assert_trees_close(got_vmap, want, rtol=1e-6, err_msg="jit(vmap)")


# --------------------------------------------------------------------------- second order


def test_softmax_ce_hessian_is_diag_p_minus_ppT():
    """jax.hessian (forward-over-reverse) and activations.hessian (reverse-over-reverse) of the
    softmax CE w.r.t. the logits equal diag(p) - p p^T, for both label forms."""
    with x64():
        xn = np.array([0.3, -1.2, 2.0, 0.0])
        x, y = jnp.asarray(xn), jnp.array([0.1, 0.2, 0.3, 0.4], jnp.float64)
        p = _np_softmax(xn)
        want = np.diag(p) - np.outer(p, p)
        for fn in (
            lambda x: A.softmax_cross_entropy(x, y),
            lambda x: A.softmax_cross_entropy_with_integer_labels(x, jnp.array(2)),
        ):
            h = jit(jax.hessian(fn))(x)
            assert_trees_close(h, want, rtol=1e-14, err_msg="jax.hessian")
            assert_trees_close(jit(A.hessian(fn))(x), want, rtol=1e-14, err_msg="A.hessian")


@pytest.mark.parametrize("hessian", [jax.hessian, A.hessian], ids=["jax.hessian", "A.hessian"])
def test_bce_second_derivative(hessian):
    """d^2 BCE / dx^2 = sigmoid'(x) = s (1 - s), by both Hessian routes (float64)."""
    with x64():
        xn = np.array([-3.0, -0.5, 0.0, 1.5, 4.0])
        y = jnp.array([0.0, 0.3, 1.0, 0.5, 1.0], jnp.float64)
        h = jit(hessian(lambda x: A.sigmoid_binary_cross_entropy(x, y).sum()))(xn)
        s = 1 / (1 + np.exp(-xn))
        assert_trees_close(h, np.diag(s * (1 - s)), rtol=1e-14)


# --------------------------------------------------------------------------- dtypes, errors


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=_ids)
def test_half_precision_dtype_preserved(dtype):
    """16-bit logits and labels give 16-bit losses and gradients, close to the float32 result."""
    x, y, labels = _data(dtype)
    cases = [
        (A.sigmoid_binary_cross_entropy, (0, 1), y),
        (A.softmax_cross_entropy, (0, 1), y),
        (A.softmax_cross_entropy_with_integer_labels, 0, labels),
    ]
    for loss, argnums, second in cases:
        val, grads = _value_and_grads(loss, x, second, argnums=argnums)
        ref = _value_and_grads(loss, _widen(x), _widen(second), argnums=argnums)
        for leaf in jax.tree_util.tree_leaves((val, grads)):
            assert leaf.dtype == jnp.dtype(dtype), (loss.__name__, leaf.dtype)
        assert_trees_close(val, ref[0], rtol=value_tol(dtype), err_msg=loss.__name__)
        assert_trees_close(grads, ref[1], rtol=grad_tol(dtype), err_msg=loss.__name__)


def _widen(a):  # exact: every 16-bit float is a float32
    a = np.asarray(a)
    return a if np.issubdtype(a.dtype, np.integer) else a.astype(np.float32)


def test_integer_version_rejects_float_labels():
    x = jnp.zeros((2, 3))
    with pytest.raises(TypeError, match="integer"):
        A.softmax_cross_entropy_with_integer_labels(x, jnp.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="integer"):
        A.softmax_cross_entropy_with_integer_labels(x, jnp.array([True, False]))

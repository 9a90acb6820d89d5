"""Higher-order and forward-mode differentiation of the custom_vjp activations.

custom_vjp defines reverse mode only. What must work: reverse-over-reverse at any order
(``grad(grad)``, ``jacrev(jacrev)``, ``activations.hessian``), ``jax.hessian``
(forward-over-reverse: the forward pass differentiates the backward rule, plain jnp code, as
the ``activations._autodiff`` docstring promises), and ``activations.jvp`` (J v by transposing
the VJP). What must fail loudly: ``jax.jvp`` applied to an activation directly.

Second derivatives are checked in float64 against autodiff of the textbook formulas in
``_reference.py`` and against central differences of ``jax.grad``, at points away from the
kinks (0, +-1, +-3, 6) where the second derivative is undefined.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import REFERENCE
from _utils import FAST_COMPILE, assert_trees_close, grad_tol, x64

import activations as A

# Compile time is the whole cost of these tests: skip LLVM's expensive passes (see _utils).
jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)

NAMES = A.names()
# Away from every kink; moderate, so the naive float64 reference formulas are accurate.
POINTS = np.array([-4.5, -2.2, -0.7, -0.15, 0.4, 1.3, 2.2, 4.5, 7.5])


def _fn(name):
    info = A.info(name)
    return functools.partial(info.fn, **info.params)


def _ref(name):
    return functools.partial(REFERENCE[name], **A.info(name).params)


def _elementwise(f, order):
    """x -> f^(order)(x) for a vector x, by nested jax.grad, vmapped."""
    for _ in range(order):
        f = jax.grad(f)
    return jax.vmap(f)


@functools.cache
def _derivatives(name: str) -> dict[str, np.ndarray]:
    """Every reverse-mode second derivative of one activation at POINTS (float64), from one
    jitted function: one compile per activation keeps the file fast on CPU."""
    f, h = _fn(name), 1e-5
    total = lambda v: f(v).sum()

    @jit
    def run(x):
        g = _elementwise(f, 1)
        return {
            "grad_grad": _elementwise(f, 2)(x),
            "reference": _elementwise(_ref(name), 2)(x),
            "differences": (g(x + h) - g(x - h)) / (2 * h),
            "jacrev_jacrev": jax.jacrev(jax.jacrev(total))(x),
            "A.hessian": A.hessian(total)(x),
        }

    with x64():
        return {k: np.asarray(v) for k, v in run(jnp.asarray(POINTS)).items()}


@pytest.mark.parametrize("name", NAMES)
def test_reverse_over_reverse_matches_reference(name):
    """grad(grad(f)) equals the reference f'' and central differences of grad(f)."""
    d = _derivatives(name)
    assert np.isfinite(d["grad_grad"]).all(), d["grad_grad"]
    tol = grad_tol(jnp.float64)
    assert_trees_close(d["grad_grad"], d["reference"], rtol=tol, err_msg=f"{name} vs reference")
    assert_trees_close(d["grad_grad"], d["differences"], rtol=tol, err_msg=f"{name} vs diffs")


def test_second_derivatives_exact_values():
    """A few second derivatives in closed form (float64)."""
    s = 1 / (1 + np.exp(-POINTS))
    t = np.tanh(POINTS)
    exact = {
        "relu": np.zeros_like(POINTS),
        "sigmoid": s * (1 - s) * (1 - 2 * s),
        "tanh": -2 * t * (1 - t * t),
        "soft_sign": -2 * np.sign(POINTS) / (1 + np.abs(POINTS)) ** 3,
        "elu": np.where(POINTS > 0, 0.0, np.exp(POINTS)),
        "softplus": s * (1 - s),
        "log_sigmoid": -s * (1 - s),
    }
    for name, want in exact.items():
        assert_trees_close(_derivatives(name)["grad_grad"], want, rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", NAMES)
def test_jacrev_jacrev_is_diagonal(name):
    """jacrev(jacrev(sum f)) on a vector is diag(f''), and A.hessian gives the same matrix."""
    d = _derivatives(name)
    want = np.diag(d["reference"])
    assert_trees_close(d["jacrev_jacrev"], want, rtol=grad_tol(jnp.float64), err_msg=name)
    assert_trees_close(d["A.hessian"], d["jacrev_jacrev"], rtol=1e-15, err_msg="A.hessian")


@pytest.mark.parametrize("name", NAMES)
def test_jax_hessian_forward_over_reverse(name):
    """``jax.hessian`` (jacfwd of jacrev) works and equals ``activations.hessian``.

    The library documents this in ``activations/_autodiff.py``. It needs the custom_vjp forward
    rule to compute its primal output with plain jnp code: when the rule calls the custom_vjp
    function itself, the outer forward-mode trace meets a custom_vjp and JAX raises.
    """
    with x64():
        x = jnp.asarray(POINTS)
        total = lambda v: _fn(name)(v).sum()
        got = jit(jax.hessian(total))(x)
    assert_trees_close(got, _derivatives(name)["A.hessian"], rtol=1e-15, err_msg=name)


@pytest.mark.parametrize("transform", ["jvp", "jacfwd"])
def test_forward_mode_raises_jax_error(transform):
    """Forward mode applied directly to a custom_vjp function is refused by JAX itself.

    The TypeError and its text come from JAX (jax/_src/custom_derivatives.py), not from this
    library; the README and ``activations._autodiff`` document it and point to
    ``activations.jvp`` / ``activations.hessian`` instead.
    """
    x = jnp.array([-1.0, 0.5, 2.0])
    msg = "can't apply forward-mode autodiff \\(jvp\\) to a custom_vjp function"
    with pytest.raises(TypeError, match=msg):
        if transform == "jvp":
            jax.jvp(A.relu, (x,), (jnp.ones_like(x),))
        else:
            jax.jacfwd(A.relu)(x)


# jvp test points: include the kinks, where both libraries must agree on the convention.
JVP_POINTS = np.array([-7.0, -3.0, -2.0, -1.0, -0.3, 0.0, 0.3, 1.0, 2.0, 3.0, 6.0, 9.0])


@pytest.mark.parametrize("name", NAMES)
def test_activations_jvp(name):
    """A.jvp(f, (x,), (v,)) = (f(x), f'(x) v), and equals jax.jvp of the jax.nn function."""
    info = A.info(name)
    f = _fn(name)
    x = jnp.asarray(JVP_POINTS, jnp.float32)
    v = jnp.asarray(np.linspace(-2.0, 3.0, x.size), jnp.float32)

    jax_nn = info.jax_nn or (lambda x: x)  # no jax.nn twin: nothing to compare below

    @jit
    def run(x, v):
        y, t = A.jvp(f, (x,), (v,))
        return y, t, f(x), jax.vmap(jax.grad(f))(x) * v, jax.jvp(jax_nn, (x,), (v,))

    y, t, y_direct, t_grad, (y_nn, t_nn) = run(x, v)
    assert t.dtype == jnp.float32 and t.shape == x.shape
    assert_trees_close(y, y_direct, rtol=0.0, atol=0.0, err_msg="primal")
    assert_trees_close(t, t_grad, rtol=1e-6, err_msg="f'(x) v")
    if info.jax_nn is not None:
        assert_trees_close(y, y_nn, rtol=1e-6, err_msg="value vs jax.nn")
        assert_trees_close(t, t_nn, rtol=grad_tol(jnp.float32), err_msg="tangent vs jax.nn")


def test_activations_jvp_scalar_and_pytree_primal():
    """A.jvp on a scalar (the docstring example) and on a two-argument function (prelu slope)."""
    y, t = jit(lambda: A.jvp(A.tanh, (0.0,), (2.0,)))()
    assert (float(y), float(t)) == (0.0, 2.0)
    x = jnp.array([-2.0, 3.0])
    a = jnp.array(0.25)
    # d prelu = a dx + min(x, 0) da
    _, t = jit(lambda x, a: A.jvp(A.prelu, (x, a), (jnp.ones(2), jnp.array(1.0))))(x, a)
    np.testing.assert_allclose(t, [0.25 * 1.0 + -2.0, 1.0], rtol=1e-7)

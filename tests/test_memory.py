"""What the forward pass saves for the backward pass, and what the compiled step allocates.

Residuals: ``jax.vjp(f, x)[1]`` is a pytree whose leaves are exactly the residuals of the
linearised function (the arrays kept alive between the forward and the backward pass).
``jax.eval_shape`` gives their shapes and dtypes without running anything. The registry's
``residual`` field says what each activation saves; these tests hold it to that.

Compiled memory: ``memory_analysis()`` of the jitted step on CPU, temp + output bytes, ours
against the jax.nn function. Three steps: ``grad``, ``value_and_grad``, and the forward pass
that returns its residuals (``jax.vjp`` under jit: the bytes a model keeps per activation
between its forward and backward passes). Where ours is known to be larger (see
``_KNOWN_LARGER``) the comparison is an xfail with the measured numbers, not an assertion.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import activations as A

SHAPE = (3, 7)
MASK = "bool mask"
INPUT = "input x"


def _residuals(f, x):
    """Shapes/dtypes of the residuals of ``f`` at ``x`` (no computation runs)."""
    vjp_fn = jax.eval_shape(lambda x: jax.vjp(f, x)[1], x)
    return jax.tree_util.tree_leaves(vjp_fn)


def _full_size(leaves, x):
    """The residuals with x's shape (scalars such as a hyperparameter are not counted)."""
    return [r for r in leaves if r.shape == x.shape]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("name", A.names())
def test_residual_matches_registry(name, dtype):
    """Mask savers save one bool array and no float array of x's shape; "input x" savers save
    exactly one array of x's shape, in x's dtype (16-bit inputs are not widened)."""
    info = A.info(name)
    x = jax.ShapeDtypeStruct(SHAPE, dtype)
    full = _full_size(_residuals(info.fn, x), x)
    kinds = [(r.dtype, r.shape) for r in full]
    if info.residual.startswith(MASK):
        assert kinds == [(jnp.dtype(bool), SHAPE)], f"{name}: {kinds}"
    elif info.residual.startswith(INPUT + " and"):
        # gelu, silu: x and sigmoid(-|z|) of the gate, trading 4 bytes for the backward exp.
        assert kinds == [(jnp.dtype(dtype), SHAPE)] * 2, f"{name}: {kinds}"
    elif info.residual.startswith(INPUT):
        assert kinds == [(jnp.dtype(dtype), SHAPE)], f"{name}: {kinds}"
    elif info.residual == "nothing":
        assert kinds == [], f"{name}: {kinds}"
    else:
        pytest.fail(f"{name}: residual {info.residual!r} is not covered by this test")


@pytest.mark.parametrize("slope", [0.01, 0.2, 1])
def test_leaky_relu_python_slope_saves_a_mask(slope):
    x = jax.ShapeDtypeStruct(SHAPE, jnp.float32)
    leaves = _residuals(lambda x: A.leaky_relu(x, slope), x)
    assert [(r.dtype, r.shape) for r in leaves] == [(jnp.dtype(bool), SHAPE)]


def test_leaky_relu_array_slope_saves_x():
    """An array slope is differentiable (prelu's path): x is saved, plus the scalar slope."""
    x = jax.ShapeDtypeStruct(SHAPE, jnp.float32)
    leaves = _residuals(lambda x: A.leaky_relu(x, jnp.float32(0.2)), x)
    assert [(r.dtype, r.shape) for r in _full_size(leaves, x)] == [(jnp.dtype(jnp.float32), SHAPE)]


def test_residuals_are_small_for_mask_savers():
    """The point of the mask: 1 byte per element, a quarter of x's float32 bytes."""
    x = jax.ShapeDtypeStruct(SHAPE, jnp.float32)
    for name in ("relu", "relu6", "hard_tanh", "hard_sigmoid", "leaky_relu"):
        nbytes = sum(r.size * r.dtype.itemsize for r in _residuals(A.get(name), x))
        assert nbytes == np.prod(SHAPE), name


# --------------------------------------------------------------------------- compiled memory

BIG = jax.ShapeDtypeStruct((256, 1024), jnp.float32)  # 1 MiB: a bool mask is 256 KiB


def _steps(f):
    loss = lambda x: f(x).sum()
    return {
        "grad": jax.grad(loss),
        "value_and_grad": jax.value_and_grad(loss),
        "forward+residuals": lambda x: jax.vjp(f, x),
    }


@functools.cache
def _bytes(name: str, which: str, step: str) -> int:
    """temp + output bytes of one compiled step, for ours ('ours') or jax.nn's ('jax_nn')."""
    info = A.info(name)
    f = info.fn if which == "ours" else info.jax_nn
    stats = jax.jit(_steps(f)[step]).lower(BIG).compile().memory_analysis()
    if stats is None:  # pragma: no cover - CPU and GPU backends return stats
        pytest.skip("memory_analysis() returned None on this backend")
    return stats.temp_size_in_bytes + stats.output_size_in_bytes


def test_memory_analysis_available():
    """CPU returns statistics (otherwise every comparison below would be skipped)."""
    stats = jax.jit(jnp.sin).lower(BIG).compile().memory_analysis()
    assert stats is not None and stats.output_size_in_bytes == 256 * 1024 * 4


# Measured with jax 0.10.2 on CPU, (256, 1024) float32, temp + output bytes (ours vs jax.nn).
# value_and_grad of sum(f(x)) (from the optimised HLO): XLA CPU's reduction (a YNNPACK
# fusion) reads materialised inputs. jax.nn's graph hands it x and sigmoid(x) (silu) or y
# (softplus) and then writes the gradient into that same buffer, its last use; ours
# materialises the forward value (a select, which the reduction does not absorb) and computes
# the gradient from x or its saved residual, so the gradient cannot take over a dead buffer:
# one f32 array more in this synthetic step (mish: two). In a training step the forward value
# is kept for the next layer in both. forward+residuals: prelu saves x (its slope is
# learnable) where jax.nn.leaky_relu saves a bool mask. strict: a comparison that starts
# passing must be moved out of this table.
_KNOWN_LARGER = {
    ("silu", "value_and_grad"): "2.10 MB vs 1.05 MB",
    ("mish", "value_and_grad"): "4.19 MB vs 2.10 MB",
    ("softplus", "value_and_grad"): "2.10 MB vs 1.05 MB",
    ("prelu", "forward+residuals"): "2.10 MB vs 1.31 MB (x saved for the slope gradient)",
}
_WITH_JAX_NN = [n for n in A.names() if A.info(n).jax_nn is not None]


def _cases():
    for step in ("grad", "value_and_grad", "forward+residuals"):
        for name in _WITH_JAX_NN:
            # grad is identical (fully fused) for all; check it on the mask savers only.
            if step == "grad" and not A.info(name).residual.startswith(MASK):
                continue
            reason = _KNOWN_LARGER.get((name, step))
            marks = [pytest.mark.xfail(reason=f"ours larger: {reason}", strict=True)] * bool(reason)
            yield pytest.param(name, step, marks=marks, id=f"{name}-{step}")


@pytest.mark.parametrize(("name", "step"), list(_cases()))
def test_compiled_memory_not_above_jax_nn(name, step):
    ours, theirs = _bytes(name, "ours", step), _bytes(name, "jax_nn", step)
    assert ours <= theirs, f"{name} {step}: {ours} bytes > jax.nn {theirs} bytes"


@pytest.mark.parametrize("name", ["relu", "relu6", "hard_tanh", "hard_sigmoid", "leaky_relu"])
def test_mask_savers_keep_a_quarter_of_the_bytes(name):
    """Forward + residuals of a mask saver: the f32 output (1 MiB) plus a 256 KiB mask; jax.nn's
    relu keeps a float32 array besides its mask. (A few bytes of tuple/index tables on top.)"""
    nbytes = _bytes(name, "ours", "forward+residuals")
    assert 256 * 1024 * (4 + 1) <= nbytes <= 256 * 1024 * (4 + 1) + 64, nbytes

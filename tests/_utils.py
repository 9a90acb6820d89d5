"""Small helpers shared by the test files: one tolerance table, tree comparison, float64.

Not a framework: each helper is a few lines and says what it checks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

#: The floating dtypes every battery runs over, narrowest first.
DTYPES = (jnp.bfloat16, jnp.float16, jnp.float32, jnp.float64)

# One table of tolerances per dtype (the values JAX's own tests use). "value" bounds a forward
# result, "grad" a derivative (one more rounding step, and a different formula than autodiff).
VALUE_TOL = {
    jnp.dtype(jnp.bfloat16): 1e-2,
    jnp.dtype(jnp.float16): 1e-3,
    jnp.dtype(jnp.float32): 1e-6,
    jnp.dtype(jnp.float64): 1e-15,
}
GRAD_TOL = {
    jnp.dtype(jnp.bfloat16): 1e-1,
    jnp.dtype(jnp.float16): 1e-2,
    jnp.dtype(jnp.float32): 2e-3,
    jnp.dtype(jnp.float64): 1e-5,
}


#: ``jax.jit(..., compiler_options=FAST_COMPILE)``: skip LLVM's expensive optimisations. For
#: tests whose programs are compiled once and run once on tiny data, compile time is the whole
#: cost; IEEE semantics are unchanged (XLA's CPU backend never enables fast-math here). Not for
#: tests that measure compiled memory or speed.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def value_tol(dtype: Any) -> float:
    """Relative (and absolute) tolerance for a forward value computed in ``dtype``."""
    return VALUE_TOL[jnp.dtype(dtype)]


def grad_tol(dtype: Any) -> float:
    """Relative (and absolute) tolerance for a gradient computed in ``dtype``."""
    return GRAD_TOL[jnp.dtype(dtype)]


def x64() -> contextlib.AbstractContextManager:
    """Context manager enabling float64 (``jax.enable_x64`` in jax 0.10; older: experimental)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # pragma: no cover - jax < 0.10

    return enable_x64()


@contextlib.contextmanager
def dtype_context(dtype: Any) -> Iterator[None]:
    """Enter :func:`x64` when ``dtype`` is float64, so arrays really get that dtype."""
    if jnp.dtype(dtype) == jnp.float64:
        with x64():
            yield
    else:
        yield


def assert_trees_close(
    actual: Any, expected: Any, *, rtol: float, atol: float | None = None, err_msg: str = ""
) -> None:
    """Same tree structure, and every leaf pair close (compared in float64, NaN equal NaN).

    ``atol`` defaults to ``rtol``: the tolerance table gives one number per dtype, used both
    ways so values near 0 are not held to a relative bound.
    """
    atol = rtol if atol is None else atol
    a_leaves, a_def = jax.tree_util.tree_flatten(actual)
    e_leaves, e_def = jax.tree_util.tree_flatten(expected)
    assert a_def == e_def, f"tree structures differ: {a_def} != {e_def}. {err_msg}"
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves, strict=True)):
        a64 = np.asarray(a, dtype=np.float64)
        e64 = np.asarray(e, dtype=np.float64)
        np.testing.assert_allclose(
            a64, e64, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"leaf {i}: {err_msg}"
        )


def assert_dtypes(tree: Any, dtype: Any) -> None:
    """Every array leaf of ``tree`` has dtype ``dtype``."""
    for leaf in jax.tree_util.tree_leaves(tree):
        assert jnp.result_type(leaf) == jnp.dtype(dtype), f"{jnp.result_type(leaf)} != {dtype}"

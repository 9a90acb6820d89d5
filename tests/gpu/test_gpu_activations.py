"""bfloat16 and float16 activations on the accelerator against float64 formulas on the CPU.

Every registered activation, its value and its gradient (cotangent 1), computed on the default
device (the GPU in the GPU check) for 16-bit inputs, against the independent textbook formulas
of ``tests/_reference.py`` evaluated in float64 on the CPU, at the project's tolerance table
for 16-bit dtypes (``tests/_utils.py``). The bit-exact claim ("evaluated in float32 and rounded
once") is ``tests/test_precision.py``, which the GPU check also runs on the GPU.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import REFERENCE
from _utils import grad_tol, value_tol, x64

import activations as A

pytestmark = pytest.mark.gpu

NAMES = A.names()
HALF = (jnp.bfloat16, jnp.float16)


def inputs(dtype) -> np.ndarray:
    """4096 values of 4 N(0, 1), moved off the kinks (where the derivative's convention, not
    its accuracy, decides), as ``dtype`` and then exactly as float64."""
    x = np.random.default_rng(0).normal(size=4096) * 4
    for kink in (0.0, 1.0, -1.0, 3.0, -3.0, 6.0):
        x = np.where(np.abs(x - kink) < 1e-2, x + 0.05, x)
    return np.asarray(jnp.asarray(x, dtype), np.float64)


def value_and_grad(f):
    def both(x):
        y, vjp = jax.vjp(f, x)
        return y, vjp(jnp.ones_like(y))[0]

    return both


@functools.cache
def on_device(dtype) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """name -> (value, gradient, platform): every activation in one program on the default
    device (one compilation per dtype)."""
    fns = {n: value_and_grad(functools.partial(A.get(n), **A.info(n).params)) for n in NAMES}
    x = jax.device_put(jnp.asarray(inputs(dtype), dtype), jax.devices()[0])
    out = jax.jit(lambda x: {n: f(x) for n, f in fns.items()})(x)
    return {
        n: (np.asarray(y), np.asarray(g), next(iter(y.devices())).platform)
        for n, (y, g) in out.items()
    }


@functools.cache
def references(dtype) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (value, gradient) of the float64 formulas on the CPU, at the 16-bit inputs."""
    fns = {n: value_and_grad(functools.partial(REFERENCE[n], **A.info(n).params)) for n in NAMES}
    with x64(), jax.default_device(jax.devices("cpu")[0]):
        out = jax.jit(lambda x: {n: f(x) for n, f in fns.items()})(
            jnp.asarray(inputs(dtype), jnp.float64)
        )
        return {n: (np.asarray(y), np.asarray(g)) for n, (y, g) in out.items()}


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("name", NAMES)
def test_16bit_value_and_gradient_on_device_match_float64(name, dtype):
    y, g, platform = on_device(dtype)[name]
    assert platform == jax.default_backend()
    assert y.dtype == g.dtype == jnp.dtype(dtype)
    want_y, want_g = references(dtype)[name]
    tol = value_tol(dtype)
    np.testing.assert_allclose(y.astype(np.float64), want_y, rtol=tol, atol=tol, err_msg="value")
    tol = grad_tol(dtype)
    np.testing.assert_allclose(g.astype(np.float64), want_g, rtol=tol, atol=tol, err_msg="grad")

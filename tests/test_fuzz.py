"""Adversarial inputs for every registered activation, in every float dtype.

About 1.3e5 inputs per dtype: tails up to +-max, +-inf, NaN, subnormals, +-tiny, signed zeros,
values a few ulps from every kink, random bit patterns and normals at several scales. One
jitted forward+backward per (activation, dtype) over the whole array, then the invariants the
docstrings and the registry promise:

- the output and the gradient keep the input dtype;
- NaN in, NaN out; no NaN output and no NaN gradient anywhere else (every activation here has
  a finite derivative at every non-NaN input, including +-inf as a limit);
- outputs inside ``info(name).output_range`` (up to rounding at the bounds); a finite input no
  larger than max / 1.1 gives a finite output (1.1 > selu's lambda, the largest slope at +inf);
- |f'| <= ``info(name).max_derivative`` (up to the dtype's gradient tolerance), and f' >= 0
  where the registry says the activation is monotonic.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from _utils import DTYPES, FAST_COMPILE, dtype_context, grad_tol, value_tol

import activations

N_RANDOM = 131_072  # total inputs per dtype (>= 1e5)
KINKS = (0.0, 1.0, -1.0, 3.0, -3.0, 6.0, -6.0)
_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _finfo(dtype) -> ml_dtypes.finfo:
    return ml_dtypes.finfo(np.dtype(dtype))


def _bits(dtype):
    return _UINT[np.dtype(dtype).itemsize]


def _ulp_neighbours(values: np.ndarray, dtype, k: int = 3) -> np.ndarray:
    """``values`` in ``dtype`` and their neighbours up to ``k`` ulps away in magnitude."""
    v = np.asarray(values, dtype=dtype)
    u = v.view(_bits(dtype))
    out = [v]
    for d in range(1, k + 1):
        out.append((u + d).view(dtype))
        out.append(np.where(u >= d, u - d, u).astype(_bits(dtype)).view(dtype))
    return np.concatenate(out)


@functools.cache
def adversarial_inputs(dtype) -> np.ndarray:
    """A fixed (seeded) array of hard inputs in ``dtype``; see the module docstring."""
    dtype = np.dtype(dtype)
    fi = _finfo(dtype)
    rng = np.random.default_rng(20260127 + dtype.itemsize)
    big, tiny, sub = float(fi.max), float(fi.smallest_normal), float(fi.smallest_subnormal)
    specials = np.array(
        [
            *(0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, big, -big, tiny, -tiny, sub, -sub),
            *(float(fi.eps), -float(fi.eps), 0.5, -0.5, 2.0, -2.0, 17.0, -17.0, 88.0, -88.0),
            *(-745.0, 745.0, 1e4, -1e4),
        ],
        dtype=np.float64,
    )
    sign = lambda n: rng.choice([-1.0, 1.0], n)
    parts = [
        _ulp_neighbours(specials.astype(dtype), dtype),
        _ulp_neighbours(np.array(KINKS), dtype, k=8),
        # tails: log-spaced magnitudes from 1 to max
        (sign(30_000) * 10.0 ** rng.uniform(0, np.log10(big), 30_000)).astype(dtype),
        # small magnitudes: log-spaced from the smallest subnormal to 1
        (sign(10_000) * 10.0 ** rng.uniform(np.log10(sub), 0, 10_000)).astype(dtype),
        # random subnormals: exponent field 0, random mantissa and sign
        (
            rng.integers(1, 2 ** (fi.nmant), 5_000, dtype=np.uint64)
            | (rng.integers(0, 2, 5_000, dtype=np.uint64) << np.uint64(8 * dtype.itemsize - 1))
        )
        .astype(_bits(dtype))
        .view(dtype),
        # random bit patterns: every exponent, NaN payloads and infinities included
        rng.integers(0, 2 ** (8 * dtype.itemsize), 20_000, dtype=np.uint64, endpoint=False)
        .astype(_bits(dtype))
        .view(dtype),
        # just off the kinks
        (rng.choice(KINKS, 5_000) + rng.normal(size=5_000) * 1e-3).astype(dtype),
        (rng.choice(KINKS, 5_000) + rng.normal(size=5_000) * 1e-6).astype(dtype),
    ]
    parts += [
        (rng.normal(size=5_000) * scale).astype(dtype)
        for scale in (1e-3, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0)
    ]
    x = np.concatenate(parts)
    assert x.size <= N_RANDOM
    fill = (rng.normal(size=N_RANDOM - x.size) * 5).astype(dtype)
    return np.concatenate([x, fill])


def test_inputs_cover_the_hard_cases():
    """The generator itself: enough inputs, and every special class present in every dtype."""
    for dtype in DTYPES:
        with np.errstate(invalid="ignore"):  # NaN payloads warn when widened
            x = adversarial_inputs(dtype).astype(np.float64)
        fi = _finfo(dtype)
        assert x.size >= 100_000
        assert np.isnan(x).any() and np.isposinf(x).any() and np.isneginf(x).any()
        assert (x == float(fi.max)).any() and (x == -float(fi.max)).any()
        assert (np.signbit(x) & (x == 0)).any() and (~np.signbit(x) & (x == 0)).any()
        sub = (x != 0) & (np.abs(x) < float(fi.smallest_normal))
        assert sub.sum() >= 1000 and (np.abs(x) == float(fi.smallest_subnormal)).any()
        for k in KINKS:
            assert (x == k).any()


def _value_and_grad(fn):
    """Elementwise value and gradient of ``fn`` (one VJP with a cotangent of ones)."""

    def run(x):
        y, vjp = jax.vjp(fn, x)
        (g,) = vjp(jnp.ones_like(y))
        return y, g

    return run


@functools.cache
def _results(dtype) -> dict[str, tuple[np.ndarray, np.ndarray, np.dtype, np.dtype]]:
    """(value, gradient, their dtypes) for every activation on the inputs of one dtype.

    All activations go through one jitted function per dtype: XLA's fixed cost per compile
    dominates on CPU, and this keeps the whole battery to a few seconds.
    """
    names = activations.names()
    with dtype_context(dtype):
        x = jnp.asarray(adversarial_inputs(dtype), dtype=dtype)
        assert x.dtype == jnp.dtype(dtype)
        run = lambda x: [_value_and_grad(activations.get(n))(x) for n in names]
        out = jax.jit(run, compiler_options=FAST_COMPILE)(x)
    with np.errstate(invalid="ignore"):  # NaN payloads warn when widened
        return {
            n: (np.asarray(y, np.float64), np.asarray(g, np.float64), y.dtype, g.dtype)
            for n, (y, g) in zip(names, out, strict=True)
        }


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("name", activations.names())
def test_fuzz_invariants(name, dtype):
    info = activations.info(name)
    yf, gf, y_dtype, g_dtype = _results(dtype)[name]
    assert y_dtype == jnp.dtype(dtype), f"{name}: output dtype {y_dtype} != {dtype}"
    assert g_dtype == jnp.dtype(dtype), f"{name}: gradient dtype {g_dtype} != {dtype}"
    with np.errstate(invalid="ignore"):
        xf = adversarial_inputs(dtype).astype(np.float64)
    nan_in = np.isnan(xf)

    def bad(mask):  # a few offending inputs, for the failure message
        return f"{int(mask.sum())} inputs, e.g. x={xf[mask][:6].tolist()}"

    m = nan_in & ~np.isnan(yf)
    assert not m.any(), f"{name}: NaN input gave a non-NaN output: {bad(m)}"
    m = ~nan_in & np.isnan(yf)
    assert not m.any(), f"{name}: NaN output: {bad(m)} -> y={yf[m][:6].tolist()}"
    m = ~nan_in & np.isnan(gf)
    assert not m.any(), f"{name}: NaN gradient: {bad(m)}"

    lo, hi = info.output_range
    vt = value_tol(dtype)
    m = ~nan_in & ((yf < lo - vt * max(1.0, abs(lo))) | (yf > hi + vt * max(1.0, abs(hi))))
    assert not m.any(), f"{name}: output outside {info.output_range}: {bad(m)} -> {yf[m][:6]}"
    limit = float(_finfo(dtype).max) / 1.1
    m = np.isfinite(xf) & (np.abs(xf) <= limit) & ~np.isfinite(yf)
    assert not m.any(), f"{name}: finite input, infinite output: {bad(m)} -> {yf[m][:6]}"

    bound = info.max_derivative * (1 + grad_tol(dtype))
    m = ~nan_in & (np.abs(gf) > bound)
    assert not m.any(), f"{name}: |f'| > {info.max_derivative}: {bad(m)} -> {gf[m][:6]}"
    if info.monotonic:
        m = ~nan_in & (gf < 0)
        assert not m.any(), f"{name}: negative f' for a monotonic activation: {bad(m)}"


# Hyperparameter gradients at the tails, where the textbook formulas give inf * 0 or cancel.
# Exact limits (float32, default hyperparameters): d/dalpha elu = e^x - 1 -> -1 at -inf;
# d/dalpha celu = (e^u - 1) - u e^u -> -1; d/dbeta silu = x^2 s'(beta x) -> 0;
# d/dbeta softplus = (z s(z) - softplus(z)) / beta^2 -> 0 at both tails; d/db squareplus =
# 1 / (4 sqrt(x^2 + b)) -> 0; d/da prelu = min(x, 0).
_HYPER = {
    "elu": ("alpha", 1.0, {-np.inf: -1.0, -1e3: -1.0, 1e3: 0.0, np.inf: 0.0}),
    "celu": ("alpha", 1.0, {-np.inf: -1.0, -1e3: -1.0, 1e3: 0.0, np.inf: 0.0}),
    "silu": ("beta", 1.0, {-np.inf: 0.0, -1e3: 0.0, 1e3: 0.0, np.inf: 0.0}),
    "softplus": ("beta", 1.0, {-np.inf: 0.0, -1e3: 0.0, 1e3: 0.0, np.inf: 0.0}),
    "squareplus": ("b", 4.0, {-np.inf: 0.0, -1e3: 2.5e-4, 1e3: 2.5e-4, np.inf: 0.0}),
    "prelu": ("negative_slope", 0.25, {-np.inf: -np.inf, -1e3: -1e3, 1e3: 0.0, np.inf: 0.0}),
}


@pytest.mark.parametrize("name", sorted(_HYPER))
def test_hyperparameter_gradient_tails(name):
    """Elementwise gradient w.r.t. a learnable hyperparameter: no NaN, and the exact limits."""
    key, value, limits = _HYPER[name]
    fn = activations.get(name)
    x = jnp.asarray(adversarial_inputs(jnp.float32))
    pin = jnp.asarray(list(limits), dtype=jnp.float32)
    expected = np.asarray(list(limits.values()))

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def hyper_grad(x):  # the hyperparameter given x's shape, so its cotangent stays elementwise
        return jax.grad(lambda p: fn(x, **{key: p}).sum())(jnp.full_like(x, value))

    with np.errstate(invalid="ignore"):  # NaN payloads warn when widened
        gp = np.asarray(hyper_grad(x), dtype=np.float64)
        xf = np.asarray(x, dtype=np.float64)
    m = ~np.isnan(xf) & np.isnan(gp)
    assert not m.any(), f"{name}: NaN d/d{key} at x={xf[m][:6].tolist()}"
    np.testing.assert_allclose(
        np.asarray(hyper_grad(pin)), expected, rtol=1e-6, atol=1e-6, err_msg=f"d/d{key}"
    )

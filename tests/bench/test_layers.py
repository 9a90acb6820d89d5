"""bench.layers: max-pool, average pool and convolution against independent references.

- max-pool: value bitwise equal to ``lax.reduce_window``; gradient equal to a NumPy loop
  that sends each window's cotangent to its first maximum in row-major order (padding = -inf,
  a candidate) and to autodiff of ``lax.reduce_window``; its residual is one int8 per output.
- average pool: a NumPy loop over cuda-convnet's windows (start 0, stride 2, clipped at the
  image edge, divided by the positions inside the image).
- convolution: ``check_grads`` in float64 and autodiff of ``lax.conv_general_dilated``.
- the optimised program of a training step inside ``lax.scan`` has only canonical forward
  convolutions and no ``select-and-scatter`` (the reason the layers exist: FINDINGS.md).
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

from bench import layers

# Tiny programs compiled once: skip LLVM's expensive passes (as tests/_utils.FAST_COMPILE).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)
DTYPES = (jnp.float32, jnp.bfloat16)


def _same_pads(n: int, k: int, s: int, padding: str) -> tuple[int, int, int]:
    """(outputs, low pad, high pad): TensorFlow's SAME (extra pad at the end) or VALID."""
    if padding == "VALID":
        return (n - k) // s + 1, 0, 0
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return out, total // 2, total - total // 2


def _np_max_pool(x, g, k, s, padding):
    """(value, gradient) by loops: the first maximum of each window in row-major order."""
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    geo = [_same_pads(n, k, s, padding) for n in spatial]
    xp = np.pad(x, [(0, 0), *((lo, hi) for _, lo, hi in geo), (0, 0)], constant_values=-np.inf)
    y = np.empty((x.shape[0], *(o for o, _, _ in geo), x.shape[-1]))
    dxp = np.zeros_like(xp)
    n_idx, c_idx = np.ogrid[: x.shape[0], : x.shape[-1]]
    for pos in itertools.product(*(range(o) for o, _, _ in geo)):
        sl = tuple(slice(p * s, p * s + k) for p in pos)
        win = xp[(slice(None), *sl, slice(None))].reshape(x.shape[0], -1, x.shape[-1])
        first = np.argmax(win, axis=1)  # numpy: the first occurrence of the maximum
        y[(slice(None), *pos, slice(None))] = np.max(win, axis=1)
        offs = np.unravel_index(first, (k,) * len(spatial))
        where = tuple(p * s + o for p, o in zip(pos, offs, strict=True))
        np.add.at(dxp, (n_idx, *where, c_idx), np.asarray(g, np.float64)[(slice(None), *pos)])
    inner = tuple(slice(lo, lo + n) for n, (_, lo, _) in zip(spatial, geo, strict=True))
    return y, dxp[(slice(None), *inner, slice(None))]


def _reduce_window_max(x, k, s, padding):
    nd = x.ndim - 2
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *(k,) * nd, 1), (1, *(s,) * nd, 1), padding)


# (input shape, window, stride, padding): the harness's pools (3/2 and 2/2, SAME) at its
# sizes (MNIST-1D 40, Fashion-MNIST 28 -> 14 -> 7, CIFAR 32 -> 16 -> 8), odd sizes included.
CASES = [
    ((2, 40, 3), 3, 2, "SAME"),
    ((3, 7, 2), 3, 2, "SAME"),
    ((2, 9, 2), 2, 2, "SAME"),
    ((2, 5, 1), 3, 2, "VALID"),
    ((2, 28, 28, 3), 3, 2, "SAME"),
    ((2, 7, 7, 4), 3, 2, "SAME"),
    ((2, 8, 8, 2), 3, 2, "SAME"),
    ((2, 9, 6, 2), 2, 2, "SAME"),
    ((1, 7, 5, 2), 3, 2, "VALID"),
    ((2, 6, 5, 1), 3, 1, "SAME"),
]


def _case_id(case):
    shape, k, s, padding = case
    return f"{'x'.join(map(str, shape))}-{k}/{s}-{padding}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_max_pool_matches_reduce_window_and_the_first_max_rule(case):
    """Distinct and tied (small integer) inputs, float32 and bfloat16, in one program."""
    shape, k, s, padding = case
    rng = np.random.default_rng(0)
    distinct = rng.permutation(math.prod(shape)).reshape(shape) / 7.0 - 3.0
    tied = rng.integers(-2, 3, shape)  # many equal maxima per window
    x = np.concatenate([distinct, tied])  # one batch: the first half distinct (in float32)
    out_shape = (len(x), *(_same_pads(n, k, s, padding)[0] for n in shape[1:-1]), shape[-1])
    # Integer cotangents: sums of a few are exact in any order, so gradients compare bitwise.
    g_int = rng.integers(-4, 5, out_shape).astype(np.float32)
    g_rand = rng.normal(size=out_shape).astype(np.float32)

    @jit
    def both(x, g_int, g_rand):
        out = {}
        for dtype in DTYPES:
            x_, g1, g2 = (a.astype(dtype) for a in (x, g_int, g_rand))
            y1, f1 = jax.vjp(lambda x: layers.max_pool(x, k, s, padding), x_)
            y2, f2 = jax.vjp(lambda x: _reduce_window_max(x, k, s, padding), x_)
            out[dtype.__name__] = (x_, y1, y2, f1(g1)[0], f2(g1)[0], f1(g2)[0], f2(g2)[0])
        return out

    for name, res in both(jnp.asarray(x, jnp.float32), g_int, g_rand).items():
        x_, y1, y2, d1, d2, r1, r2 = (np.asarray(a, np.float64) for a in res)
        np.testing.assert_array_equal(y1, y2, err_msg=name)
        y_np, d_np = _np_max_pool(x_, g_int, k, s, padding)
        np.testing.assert_array_equal(y1, y_np, err_msg=name)
        np.testing.assert_array_equal(d1, d_np, err_msg=name)
        np.testing.assert_array_equal(d1, d2, err_msg=name)
        # Float cotangents: the same positions, sums in another order (bf16: one rounding).
        tol = 1e-6 if name == "float32" else 1e-2
        np.testing.assert_allclose(r1, r2, rtol=tol, atol=tol, err_msg=name)


def test_max_pool_special_values_follow_autodiff():
    """A window of -inf whose first candidate is padding loses its cotangent, and NaNs steer
    the selection, exactly as in autodiff's select_and_scatter_add."""
    x = np.random.default_rng(5).normal(size=(4, 6, 6, 1))
    x[np.random.default_rng(6).random(x.shape) < 0.2] = np.nan
    g = np.random.default_rng(7).integers(-4, 5, (4, 3, 3, 1)).astype(np.float32)

    @jit
    def grads(x, g):
        return [
            jax.vjp(lambda x, f=f: f(x, 3, 2, "SAME"), x)[1](g)[0]
            for f in (layers.max_pool, _reduce_window_max)
        ]

    ours, ref = grads(jnp.asarray(x, jnp.float32), g)
    np.testing.assert_array_equal(ours, ref)
    ours, ref = grads(jnp.full((1, 5, 5, 1), -jnp.inf), jnp.ones((1, 3, 3, 1)))
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(ours[0, :, :, 0][1], [0, 1, 0, 1, 0])  # window 0 picks a pad


def test_max_pool_residual_is_an_int8_argmax():
    """One int8 per output element is all the forward pass keeps: jax.vjp's closure leaves
    and the compiled forward program's output (the residual and y) say the same."""
    x = jax.ShapeDtypeStruct((8, 28, 28, 16), jnp.float32)
    out = (8, 14, 14, 16)
    leaves = jax.tree.leaves(jax.eval_shape(lambda x: jax.vjp(_pool32, x)[1], x))
    assert [(r.shape, r.dtype) for r in leaves] == [(out, jnp.dtype(jnp.int8))]
    ours = jax.jit(lambda x: jax.vjp(_pool32, x)[1]).lower(x).compile().memory_analysis()
    ref = jax.jit(lambda x: jax.vjp(lambda x: _reduce_window_max(x, 3, 2, "SAME"), x)[1])
    ref = ref.lower(x).compile().memory_analysis()
    if ours is None or ref is None:
        pytest.skip("memory_analysis() returned None on this backend")
    assert ours.output_size_in_bytes == math.prod(out)  # 1 byte per output
    assert ref.output_size_in_bytes == 4 * math.prod(x.shape)  # autodiff keeps x itself


def _pool32(x):
    return layers.max_pool(x, 3, 2, "SAME")


def _sq_pool(pool, x):  # quadratic, so its second derivative is not zero
    return jnp.sum(pool(x, 3, 2, "SAME") ** 2)


def test_max_pool_jit_vmap_and_second_order():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.permutation(2 * 3 * 9 * 9 * 2).reshape(2, 3, 9, 9, 2) / 50.0, jnp.float32)
    v = jnp.asarray(rng.normal(size=x.shape[1:]), jnp.float32)
    grad = jax.grad(functools.partial(_sq_pool, layers.max_pool))

    def hvp(pool, x):  # Hessian-vector product by double reverse
        return jax.grad(lambda x: jnp.vdot(jax.grad(functools.partial(_sq_pool, pool))(x), v))(x)

    @jit
    def transformed(x):
        return jax.vmap(grad)(x), hvp(layers.max_pool, x[0]), hvp(_reduce_window_max, x[0])

    vm, h_ours, h_ref = transformed(x)
    for i in range(2):  # vmap over a leading axis == one call per slice, jit == eager
        np.testing.assert_array_equal(vm[i], grad(x[i]))
    np.testing.assert_allclose(h_ours, h_ref, rtol=1e-6, atol=1e-6)
    assert float(jnp.abs(h_ours).max()) > 0
    with jax.enable_x64(True):
        x64_ = jnp.asarray(np.asarray(x[0, :1, :5, :5, :1]), jnp.float64)
        check_grads(jax.jit(lambda x: _sq_pool(layers.max_pool, x)), (x64_,), 2, modes=("rev",))


def _np_avg_pool_cuda_convnet(x, k, s):
    """cuda-convnet's average pool on an even-sized image: windows start at 0, 2, ..., their
    count is ceil((n - k) / s) + 1 (``outputsX``), each clipped at the image edge and divided
    by the positions inside it (``regionSize``)."""
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    outs = [math.ceil((n - k) / s) + 1 for n in spatial]
    y = np.empty((x.shape[0], *outs, x.shape[-1]))
    for pos in itertools.product(*(range(o) for o in outs)):
        sl = tuple(slice(p * s, min(p * s + k, n)) for p, n in zip(pos, spatial, strict=True))
        win = x[(slice(None), *sl, slice(None))]
        y[(slice(None), *pos, slice(None))] = win.mean(axis=tuple(range(1, 1 + len(spatial))))
    return y


@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (2, 16, 8, 2), (2, 40, 3), (1, 4, 1)])
def test_avg_pool_is_cuda_convnets(shape):
    x = np.random.default_rng(2).normal(size=shape)
    with jax.enable_x64(True):
        y = jit(lambda x: layers.avg_pool(x, 3, 2, "SAME"))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(y), _np_avg_pool_cuda_convnet(x, 3, 2), rtol=1e-13)


def test_avg_pool_odd_sizes_and_gradients():
    """Odd sizes: SAME pads both ends, each window still divided by its in-image positions.
    Gradients: check_grads in float64, and autodiff of reduce_window's sum in float32."""
    x = np.random.default_rng(3).normal(size=(2, 7, 5, 2))
    counts = np.array([2, 3, 3, 2])[:, None] * np.array([2, 3, 2])[None, :]  # 7 -> 4, 5 -> 3
    xp = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    sums = sum(xp[:, i : i + 7 : 2, j : j + 5 : 2] for i in range(3) for j in range(3))
    with jax.enable_x64(True):
        xj = jnp.asarray(x)
        y = jit(lambda x: layers.avg_pool(x, 3, 2, "SAME"))(xj)
        np.testing.assert_allclose(np.asarray(y), sums / counts[None, :, :, None], rtol=1e-13)
        f = jax.jit(lambda x: jnp.sum(layers.avg_pool(x, 3, 2, "SAME") ** 2))
        check_grads(f, (xj[:1, :, :, :1],), 2, modes=("rev",))

    def ref(x):
        s = lax.reduce_window(x, 0.0, lax.add, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")
        return s / jnp.asarray(counts[None, :, :, None], x.dtype)

    x32 = jnp.asarray(x, jnp.float32)
    g = jit(lambda x: [jax.grad(lambda x, f=f: jnp.sum(f(x) ** 2))(x) for f in (ref, _avg32)])(x32)
    np.testing.assert_allclose(g[0], g[1], rtol=1e-6, atol=1e-7)


def _avg32(x):
    return layers.avg_pool(x, 3, 2, "SAME")


def _lax_conv(x, w):
    nd = x.ndim - 2
    dims = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[nd]
    return lax.conv_general_dilated(x, w, (1,) * nd, "SAME", dimension_numbers=dims)


# (input shape, kernel shape): 1-D and 2-D; odd kernels and even ones (SAME pads unevenly).
CONVS = [
    ((2, 12, 3), (5, 3, 4)),
    ((2, 9, 2), (4, 2, 3)),
    ((2, 8, 7, 3), (5, 5, 3, 4)),
    ((3, 6, 5, 2), (2, 3, 2, 2)),
]


@pytest.mark.parametrize(("xs", "ws"), CONVS, ids=[str(c[1]) for c in CONVS])
def test_conv_gradients_are_autodiffs(xs, ws):
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=xs), rng.normal(size=ws)
    with jax.enable_x64(True):
        args = (jnp.asarray(x), jnp.asarray(w))
        np.testing.assert_allclose(jit(layers.conv)(*args), _lax_conv(*args), rtol=1e-13)
        check_grads(jax.jit(layers.conv), args, 2, modes=("rev",))
    args = (jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32))

    @jit
    def grads(x, w):
        def loss(f):
            return lambda x, w: jnp.sum(jnp.sin(f(x, w)))

        return jax.grad(loss(layers.conv), (0, 1))(x, w), jax.grad(loss(_lax_conv), (0, 1))(x, w)

    ours, ref = grads(*args)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(jnp.abs(b).max()))


@pytest.mark.parametrize("nd", [1, 2])
def test_scanned_training_step_has_only_canonical_convolutions(nd):
    """What makes the layers fast on XLA CPU (FINDINGS.md): inside a while loop every
    convolution of a conv -> relu -> max-pool step, forward and backward, is in the canonical
    batch-first, feature-last form, and no scatter is left."""
    shape, kernel = ((8, 12, 12, 2), (5, 5, 2, 4)) if nd == 2 else ((8, 20, 2), (5, 2, 4))

    def step(w, x):
        def loss(w, x):
            return jnp.sum(layers.max_pool(jax.nn.relu(layers.conv(x, w)), 3, 2) ** 2)

        dw, dx = jax.grad(loss, (0, 1))(w, x)  # both gradients: 3 convolutions in all
        return w - 0.01 * dw, dx

    def run(w, xs):
        return lax.scan(step, w, xs)

    args = (
        jax.ShapeDtypeStruct(kernel, jnp.float32),
        jax.ShapeDtypeStruct((3, *shape), jnp.float32),
    )
    hlo = jax.jit(run).lower(*args).compile().as_text()
    labels = [
        line.split("dim_labels=")[1].split(",")[0]
        for line in hlo.splitlines()
        if " convolution(" in line
    ]
    canonical = "b01f_01io->b01f" if nd == 2 else "b0f_0io->b0f"
    assert len(labels) == 3 and set(labels) == {canonical}, labels
    # autodiff's select_and_scatter_add: XLA CPU expands it into a scatter
    assert " scatter(" not in hlo and "select-and-scatter(" not in hlo

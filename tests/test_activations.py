"""The per-activation battery: every registered activation x dtype x (plain, jit, vmap).

Values are checked against jax.nn and against independent float64 formulas, gradients against
autodiff of those formulas, second-order reverse mode with check_grads, and the special points
(0, kinks, +-inf, nan, tails) against exact expectations. A new activation in the registry gets
all of it without touching this file.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import REFERENCE, SELU_ALPHA, SELU_LAMBDA
from _utils import DTYPES, dtype_context, grad_tol, value_tol, x64
from jax.test_util import check_grads

import activations as A

NAMES = A.names()
TRANSFORMS = ("plain", "jit", "vmap")


def _apply(transform, f, x):
    if transform == "jit":
        return jax.jit(f)(x)
    if transform == "vmap":
        return jax.vmap(f)(x)
    return f(x)


def _elementwise_grad(f):
    return lambda x: jax.grad(lambda v: jnp.sum(f(v).astype(jnp.float32)))(x)


def _inputs(dtype, n=4096, scale=4.0, seed=0):
    """Normal inputs of ``dtype`` (shape (64, n/64) so vmap has an axis), away from kinks."""
    x = np.random.default_rng(seed).normal(size=(64, n // 64)) * scale
    for kink in (0.0, 1.0, -1.0, 3.0, -3.0, 6.0):
        x = np.where(np.abs(x - kink) < 1e-2, x + 0.05, x)
    return jnp.asarray(x, dtype)


def _ref(name):
    return lambda x: REFERENCE[name](x, **A.info(name).params)


def test_every_registered_activation_has_a_reference():
    assert set(NAMES) == set(REFERENCE), "add a float64 reference formula in tests/_reference.py"


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_values(name, dtype, transform):
    info = A.info(name)
    with dtype_context(dtype):
        x = _inputs(dtype)
        y = _apply(transform, info.fn, x)
        assert y.dtype == x.dtype
        with x64():
            want = np.asarray(_ref(name)(jnp.asarray(np.asarray(x, np.float64))))
        tol = value_tol(dtype)
        np.testing.assert_allclose(np.asarray(y, np.float64), want, rtol=tol, atol=tol)
        if info.jax_nn is not None:
            # jax.nn evaluates 16-bit inputs in 16 bits, where e.g. squareplus cancels badly;
            # compare the definitions, so give it float32 for those.
            xin = x.astype(jnp.float32) if jnp.dtype(dtype).itemsize == 2 else x
            theirs = np.asarray(info.jax_nn(xin).astype(dtype), np.float64)
            np.testing.assert_allclose(
                np.asarray(y, np.float64), theirs, rtol=2 * tol, atol=max(tol, 1e-14)
            )


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_gradients(name, dtype, transform):
    with dtype_context(dtype):
        x = _inputs(dtype, scale=3.0)
        g = _apply(transform, _elementwise_grad(A.get(name)), x)
        assert g.dtype == x.dtype
        with x64():
            want = np.asarray(_elementwise_grad(_ref(name))(jnp.asarray(np.asarray(x, np.float64))))
        tol = grad_tol(dtype)
        np.testing.assert_allclose(np.asarray(g, np.float64), want, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", NAMES)
def test_check_grads_second_order_reverse(name):
    with x64():
        x = _inputs(jnp.float64, n=64, scale=2.0, seed=1).reshape(-1)
        check_grads(A.get(name), (x,), order=2, modes=("rev",))


def _close(got, want, dtype):
    got, want = np.float64(got), np.float64(want)
    if math.isnan(want) or math.isinf(want):
        np.testing.assert_equal(got, want)
    else:
        tol = {jnp.float32: 1e-6, jnp.float64: 1e-12}[dtype]
        np.testing.assert_allclose(got, want, rtol=tol, atol=1e-300)


_LAM_ALPHA = SELU_LAMBDA * SELU_ALPHA
_E20 = math.exp(-20)


def _sig(x):
    return 1 / (1 + math.exp(-x))


# (x, f(x), f'(x)): exact expectations at 0, kinks, +-inf and tails.
SPECIAL = {
    "identity": [(0, 0, 1), (math.inf, math.inf, 1), (-math.inf, -math.inf, 1)],
    "sigmoid": [(0, 0.5, 0.25), (math.inf, 1, 0), (-math.inf, 0, 0),
                (-30, _sig(-30), _sig(-30) * _sig(30)), (30, _sig(30), _sig(-30) * _sig(30))],
    "tanh": [(0, 0, 1), (math.inf, 1, 0), (-math.inf, -1, 0),
             (10, math.tanh(10), 4 * _E20 / (1 + _E20) ** 2)],
    "hard_tanh": [(0, 0, 1), (1, 1, 1), (-1, -1, 1), (2, 1, 0), (-2, -1, 0),
                  (math.inf, 1, 0), (-math.inf, -1, 0)],
    "hard_sigmoid": [(0, 0.5, 1 / 6), (-3, 0, 0), (3, 1, 0), (math.inf, 1, 0),
                     (-math.inf, 0, 0)],
    "soft_sign": [(0, 0, 1), (1, 0.5, 0.25), (math.inf, 1, 0), (-math.inf, -1, 0)],
    "log_sigmoid": [(0, -math.log(2), 0.5), (math.inf, 0, 0), (-math.inf, -math.inf, 1),
                    (-30, -30 - math.log1p(math.exp(-30)), _sig(30))],
    "relu": [(0, 0, 0), (1, 1, 1), (-1, 0, 0), (math.inf, math.inf, 1), (-math.inf, 0, 0)],
    "relu6": [(0, 0, 0), (6, 6, 0), (3, 3, 1), (7, 6, 0), (math.inf, 6, 0), (-math.inf, 0, 0)],
    "leaky_relu": [(0, 0, 1), (-1, -0.01, 0.01), (math.inf, math.inf, 1),
                   (-math.inf, -math.inf, 0.01)],
    "prelu": [(0, 0, 1), (-1, -0.25, 0.25), (math.inf, math.inf, 1),
              (-math.inf, -math.inf, 0.25)],
    "elu": [(0, 0, 1), (-math.inf, -1, 0), (math.inf, math.inf, 1),
            (-20, math.expm1(-20), _E20)],
    "celu": [(0, 0, 1), (-math.inf, -1, 0), (math.inf, math.inf, 1),
             (-20, math.expm1(-20), _E20)],
    "selu": [(0, 0, _LAM_ALPHA), (-math.inf, -_LAM_ALPHA, 0),
             (math.inf, math.inf, SELU_LAMBDA), (1, SELU_LAMBDA, SELU_LAMBDA)],
    "gelu": [(0, 0, 0.5), (math.inf, math.inf, 1), (-math.inf, 0, 0)],
    "silu": [(0, 0, 0.5), (math.inf, math.inf, 1), (-math.inf, 0, 0),
             (-30, -30 * _sig(-30), _sig(-30) * (1 - 30 * _sig(30)))],
    "hard_silu": [(0, 0, 0.5), (-3, 0, 0), (3, 3, 1), (math.inf, math.inf, 1),
                  (-math.inf, 0, 0)],
    "mish": [(0, 0, 0.6), (math.inf, math.inf, 1), (-math.inf, 0, 0)],
    "softplus": [(0, math.log(2), 0.5), (math.inf, math.inf, 1), (-math.inf, 0, 0),
                 (-30, math.log1p(math.exp(-30)), _sig(-30)),
                 (30, 30 + math.log1p(math.exp(-30)), _sig(30))],
    "squareplus": [(0, 1, 0.5), (math.inf, math.inf, 1), (-math.inf, 0, 0),
                   (-1e4, 2 / (math.sqrt(1e8 + 4) + 1e4),
                    4 / (2 * math.hypot(1e4, 2) * (math.hypot(1e4, 2) + 1e4)))],
}  # fmt: skip


def test_every_activation_has_special_points():
    assert set(SPECIAL) == set(NAMES)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_special_points(name, dtype):
    f = A.get(name)
    with dtype_context(dtype):
        for x, value, grad in SPECIAL[name]:
            xa = jnp.asarray(x, dtype)
            _close(f(xa), value, dtype)
            _close(jax.grad(f)(xa), grad, dtype)
        assert jnp.isnan(f(jnp.asarray(jnp.nan, dtype)))


@pytest.mark.parametrize("name", [n for n in NAMES if A.info(n).jax_nn is not None])
def test_kink_conventions_match_jax_nn(name):
    """At 0 and the kinks the derivative is a convention: ours is jax.nn's (relu'(0) = 0, ...)."""
    f, theirs = A.get(name), A.info(name).jax_nn
    for x in (0.0, 1.0, -1.0, 3.0, -3.0, 6.0, -6.0):
        # Conventions differ by O(1) (0 vs 1); allow float32 rounding away from the kinks.
        want = pytest.approx(float(jax.grad(theirs)(x)), rel=1e-4, abs=1e-6)
        assert float(jax.grad(f)(x)) == want, x


def test_sigmoid_tail_gradient_is_exp_minus_x_in_float32():
    x = jnp.linspace(17.0, 80.0, 2000, dtype=jnp.float32)
    g = np.asarray(jax.vmap(jax.grad(A.sigmoid))(x), np.float64)
    want = np.exp(-np.asarray(x, np.float64))
    np.testing.assert_allclose(g, want * (1 - want) ** 0, rtol=1e-4)
    # The textbook rule f (1 - f) from the saved output is exactly 0 across this whole range.
    assert float(jnp.max(jax.vmap(jax.grad(jax.nn.sigmoid))(x))) == 0.0


def test_elu_tail_gradient_is_exp_x_in_float32():
    x = jnp.linspace(-80.0, -17.0, 2000, dtype=jnp.float32)
    for f in (A.elu, A.celu):
        g = np.asarray(jax.vmap(jax.grad(f))(x), np.float64)
        np.testing.assert_allclose(g, np.exp(np.asarray(x, np.float64)), rtol=1e-4)


def test_tanh_tail_gradient_keeps_its_value():
    x = jnp.linspace(5.0, 40.0, 500, dtype=jnp.float32)
    g = np.asarray(jax.vmap(jax.grad(A.tanh))(x), np.float64)
    x64 = np.asarray(x, np.float64)
    np.testing.assert_allclose(g, 1 / np.cosh(x64) ** 2, rtol=1e-4)


# --- the seed's facts -------------------------------------------------------------------------


def test_sigmoid_derivative_peaks_at_a_quarter_at_zero():
    with x64():
        x = jnp.linspace(-10, 10, 200001)
        g = jax.vmap(jax.grad(A.sigmoid))(x)
        assert float(jnp.max(g)) == 0.25
        assert float(x[jnp.argmax(g)]) == pytest.approx(0.0, abs=1e-12)


def test_tanh_is_a_rescaled_sigmoid():
    with x64():
        x = jnp.linspace(-20, 20, 4001)
        np.testing.assert_allclose(A.tanh(x), 2 * A.sigmoid(2 * x) - 1, atol=1e-15)
        np.testing.assert_allclose(
            jax.vmap(jax.grad(A.tanh))(x),
            jax.vmap(jax.grad(lambda v: 2 * A.sigmoid(2 * v) - 1))(x),
            atol=1e-15,
        )


def _gaussian_mean(f, power=1):
    """E[f(z)^power], z ~ N(0, 1), by the trapezoid rule on a fine grid (kinks included)."""
    with x64():
        z = jnp.linspace(-14, 14, 280001)
        w = np.exp(-0.5 * np.asarray(z) ** 2) / math.sqrt(2 * math.pi)
        return float(np.trapezoid(np.asarray(f(z)) ** power * w, np.asarray(z)))


def test_selu_constants_give_zero_mean_unit_variance():
    assert abs(_gaussian_mean(A.selu)) < 1e-6
    assert abs(_gaussian_mean(A.selu, 2) - 1) < 1e-6
    # Perturbing the constants breaks the fixed point.
    assert abs(_gaussian_mean(lambda z: 1.1 * A.selu(z), 2) - 1) > 0.1


def test_relu_outputs_true_zeros_and_sigmoid_never_does():
    x = jax.random.normal(jax.random.key(0), (100_000,)) * 5
    assert int(jnp.sum(A.relu(x) == 0)) == int(jnp.sum(x <= 0)) > 40_000
    assert int(jnp.sum(A.sigmoid(x) == 0)) == 0


# --- the registry's facts, checked numerically for every activation ----------------------------


@pytest.fixture(scope="module")
def grid():
    with x64():
        return np.linspace(-60, 60, 240001)


def _f_and_df(name, x):
    with x64():
        f = A.get(name)
        xs = jnp.asarray(x)
        return np.asarray(jax.jit(f)(xs)), np.asarray(jax.jit(jax.vmap(jax.grad(f)))(xs))


@pytest.mark.parametrize("name", NAMES)
def test_registered_facts(name, grid):
    info = A.info(name)
    y, d = _f_and_df(name, grid)
    lo, hi = info.output_range
    assert y.min() >= lo - 1e-12 and y.max() <= hi + 1e-12
    assert info.bounded == (math.isfinite(lo) and math.isfinite(hi))
    far, d_far = _f_and_df(name, np.array([-1e15, 1e15]))
    for bound, attained in ((lo, min(y.min(), far.min())), (hi, max(y.max(), far.max()))):
        if math.isfinite(bound):
            assert attained == pytest.approx(bound, abs=1e-6), "range bound not approached"
    # A few ulps of slack: XLA's float64 tanh is monotonic only to ~4 ulp.
    assert info.monotonic == bool(np.all(np.diff(y) >= -1e-14))

    mean = _gaussian_mean(info.fn)
    assert (abs(mean) < 1e-6) == info.zero_centred, mean

    left, right = abs(d_far[0]), abs(d_far[-1])
    assert ("-inf" in info.saturates) == (left < 1e-6), left
    assert ("+inf" in info.saturates) == (right < 1e-6), right
    assert info.saturating == (len(info.saturates) == 2)

    assert np.abs(d).max() == pytest.approx(info.max_derivative, rel=1e-3)
    arg = info.argmax_derivative
    if isinstance(arg, tuple):
        inside = (grid > arg[0] + 1e-3) & (grid < arg[1] - 1e-3)
        np.testing.assert_allclose(d[inside], info.max_derivative, rtol=1e-12)
    elif math.isinf(arg):
        end = d_far[-1] if arg > 0 else d_far[0]
        assert end == pytest.approx(info.max_derivative, rel=1e-12)
    else:
        assert grid[np.argmax(np.abs(d))] == pytest.approx(arg, abs=1e-3)

    # Sparsity: exact zeros for a whole interval of inputs, not underflow in a far tail.
    near = (np.abs(grid) <= 20) & (grid != 0)
    zeros = int(np.sum(y[near] == 0))
    assert (zeros > 1000) == info.sparse, zeros


def test_info_names_the_paper_and_residual():
    for name in NAMES:
        info = A.info(name)
        assert info.name == name and info.reference and info.residual
    assert A.info("sigmoid").max_derivative == 0.25 and A.info("sigmoid").argmax_derivative == 0
    assert A.info("relu").sparse and not A.info("sigmoid").sparse
    assert A.info("tanh").zero_centred and not A.info("sigmoid").zero_centred
    assert A.info("sigmoid").saturating and not A.info("relu").saturating


# --- registry -------------------------------------------------------------------------------


def test_get_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown activation 'relu7'.*relu6.*tanh"):
        A.get("relu7")
    with pytest.raises(ValueError, match="unknown activation"):
        A.info(["relu"])


def test_aliases_and_jax_nn_names():
    assert A.get("swish") is A.silu and A.get("hard_swish") is A.hard_silu
    assert "swish" not in A.names()
    for name in NAMES:
        if name != "prelu":
            assert hasattr(jax.nn, name), name
            assert A.get(name) is getattr(A, name)


def test_signatures_match_jax_nn():
    import inspect

    for name in NAMES:
        if not hasattr(jax.nn, name):
            continue
        ours = inspect.signature(A.get(name)).parameters
        theirs = inspect.signature(getattr(jax.nn, name)).parameters
        for p in theirs.values():
            assert p.name in ours, (name, p.name)
            if p.default is not inspect.Parameter.empty:
                assert ours[p.name].default == p.default, (name, p.name)


# --- hyperparameters ------------------------------------------------------------------------


def test_leaky_relu_array_slope_is_differentiable_and_equals_constant_path():
    x = _inputs(jnp.float32, n=256)
    np.testing.assert_array_equal(A.leaky_relu(x, 0.2), A.leaky_relu(x, jnp.float32(0.2)))
    g = jax.grad(lambda a: A.leaky_relu(x, a).sum())(jnp.float32(0.2))
    assert float(g) == pytest.approx(float(jnp.sum(jnp.minimum(x, 0))), rel=1e-5)
    # A traced slope under vmap (the harness's "slope" axis).
    slopes = jnp.array([0.0, 0.1, 0.3])
    ys = jax.vmap(lambda a: A.leaky_relu(x, a))(slopes)
    for a, y in zip(slopes, ys, strict=True):
        np.testing.assert_allclose(y, jax.nn.leaky_relu(x, a), rtol=1e-6)


def test_prelu_per_channel_slope_gradient():
    x = jax.random.normal(jax.random.key(1), (8, 5, 3))
    a = A.prelu_init((3,))
    assert a.shape == (3,) and np.all(np.asarray(a) == 0.25)
    ga = jax.grad(lambda a: jnp.sum(A.prelu(x, a) ** 2))(a)
    want = jax.grad(lambda a: jnp.sum(jnp.where(x >= 0, x, a * x) ** 2))(a)
    assert ga.shape == (3,)
    np.testing.assert_allclose(ga, want, rtol=1e-5)


@pytest.mark.parametrize(
    "name, param, value",
    [("elu", "alpha", 0.7), ("celu", "alpha", 1.8), ("silu", "beta", 1.7),
     ("softplus", "beta", 2.5), ("squareplus", "b", 1.5), ("prelu", "negative_slope", 0.1),
     ("leaky_relu", "negative_slope", 0.3)],
)  # fmt: skip
def test_hyperparameter_gradients_match_reference(name, param, value):
    with x64():
        x = _inputs(jnp.float64, n=512, scale=3.0, seed=3)
        ours = jax.grad(lambda p: jnp.sum(A.get(name)(x, **{param: p}) ** 2))(value)
        ref = jax.grad(lambda p: jnp.sum(REFERENCE[name](x, **{param: p}) ** 2))(value)
        assert float(ours) == pytest.approx(float(ref), rel=1e-9)
        gx = jax.grad(lambda v: jnp.sum(A.get(name)(v, **{param: value})))(x)
        gx_ref = jax.grad(lambda v: jnp.sum(REFERENCE[name](v, **{param: value})))(x)
        np.testing.assert_allclose(gx, gx_ref, rtol=1e-9, atol=1e-12)


def test_softplus_torch_threshold_and_beta():
    x = jnp.array([-30.0, -1.0, 0.0, 1.0, 9.0, 11.0, 30.0])
    y = A.softplus(x, beta=2.0, threshold=20.0)
    want = np.where(2 * np.asarray(x) > 20, x, np.log1p(np.exp(2 * np.asarray(x))) / 2)
    np.testing.assert_allclose(y, want, rtol=1e-6)
    g = jax.vmap(jax.grad(lambda v: A.softplus(v, beta=2.0, threshold=20.0)))(x)
    np.testing.assert_allclose(g[-2:], [1.0, 1.0])
    np.testing.assert_allclose(A.softplus(x), jax.nn.softplus(x), rtol=1e-6)


@pytest.mark.parametrize(("beta", "threshold"), [(1.0, 1.0), (2.0, 2.0), (0.5, 1.0)])
def test_softplus_small_threshold_switches_to_x(beta, threshold):
    # At a small threshold the two branches differ by O(1): softplus(1.5) = 1.70 against 1.5,
    # sigmoid(1.5) = 0.82 against 1. PyTorch's definition, in float64: x where beta x >
    # threshold, else log1p(exp(beta x)) / beta, derivative 1 or sigmoid(beta x).
    x = np.array([-3.0, -0.5, 0.0, 0.5, 0.9, 1.1, 1.5, 2.5, 4.0, 10.0])
    z = beta * x
    lin = z > threshold
    assert lin.sum() >= 3 and (~lin).sum() >= 3
    want = np.where(lin, x, np.log1p(np.exp(z)) / beta)
    dwant = np.where(lin, 1.0, 1 / (1 + np.exp(-z)))
    f = jax.jit(lambda v: A.softplus(v, beta=beta, threshold=threshold))
    xs = jnp.asarray(x, jnp.float32)
    np.testing.assert_allclose(f(xs), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(jax.vmap(jax.grad(f))(xs), dwant, rtol=1e-6, atol=1e-7)
    assert np.abs(np.log1p(np.exp(z[lin])) / beta - x[lin]).max() > 0.05  # branches differ


def test_gelu_exact_form():
    with x64():
        x = _inputs(jnp.float64, n=512)
        ref = lambda v: 0.5 * v * jax.scipy.special.erfc(-v / math.sqrt(2))
        np.testing.assert_allclose(A.gelu(x, approximate=False), ref(x), rtol=1e-13)
        np.testing.assert_allclose(
            jax.vmap(jax.grad(lambda v: A.gelu(v, approximate=False)))(x.reshape(-1)),
            jax.vmap(jax.grad(ref))(x.reshape(-1)),
            rtol=1e-12,
            atol=1e-15,
        )
        # jax.nn's 1 + erf form cancels for x < -3: compare it with an absolute tolerance.
        np.testing.assert_allclose(A.gelu(x, approximate=False), jax.nn.gelu(x, False), atol=1e-15)


def test_integer_input_promotes_to_float():
    y = A.relu(jnp.arange(-2, 3))
    assert jnp.issubdtype(y.dtype, jnp.floating)
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 2])


@pytest.mark.parametrize("name", NAMES)
def test_gradient_comes_from_the_custom_vjp_rule(name):
    """The public function binds a custom_vjp primitive: its backward pass is ours, not autodiff."""
    jaxpr = str(jax.make_jaxpr(A.get(name))(jnp.ones(3)))
    assert "custom_vjp_call" in jaxpr, jaxpr

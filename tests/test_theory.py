"""Mean-field theory (activations/theory.py) against exact results, an independent quadrature,
and the simulation values recorded in /work/shared/FINDINGS.md."""

import functools
import math

import jax.numpy as jnp
import numpy as np
import pytest

import activations
from activations import theory as T

SELU_LAMBDA = 1.0507009873554804934193349852946


# --- quadrature -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", activations.names())
def test_quadrature_converges_for_every_activation(name):
    # n and 2n nodes per panel agree far below 1e-8, kinked or not: panels end at the kinks.
    q = np.array([1e-4, 0.5, 3.0, 1e3, 1e8])
    for a, b in zip(
        T.moments(name, q, n=T.N_NODES), T.moments(name, q, n=2 * T.N_NODES), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", activations.names())
def test_length_map_is_non_decreasing(name):
    # q_star relies on it: iterating a non-decreasing map moves monotonically to a fixed point.
    m2, _ = T.moments(name, np.geomspace(1e-6, 1e8, 300))
    assert np.all(np.diff(m2) >= -1e-12 * m2[1:])


def _brute(f, q, n=2_000_001):
    # Independent check: trapezoid rule on a fine grid of z (error O(h^2) at a kink, h = 1e-5).
    z = np.linspace(-12.0, 12.0, n)
    return np.trapezoid(f(np.sqrt(q) * z) * np.exp(-0.5 * z * z), z) / math.sqrt(2 * math.pi)


def test_quadrature_matches_brute_force_smooth():
    q = 30.0  # tanh(sqrt(30) z) is steep: plain Gauss-Hermite with 200 nodes is off by 1e-3
    m2, d2 = T.moments("tanh", q)
    assert m2 == pytest.approx(_brute(lambda x: np.tanh(x) ** 2, q), rel=1e-10)
    assert d2 == pytest.approx(_brute(lambda x: (1 - np.tanh(x) ** 2) ** 2, q), rel=1e-10)


@pytest.mark.parametrize("name, lo, hi, q", [("hard_tanh", -1, 1, 2.0), ("relu6", 0, 6, 20.0)])
def test_quadrature_matches_brute_force_and_closed_form_kinked(name, lo, hi, q):
    m2, d2 = T.moments(name, q)
    assert m2 == pytest.approx(_brute(lambda x: np.clip(x, lo, hi) ** 2, q), rel=1e-8)
    # phi'^2 is the indicator of (lo, hi): P(lo < sqrt(q) z < hi) in closed form
    cdf = lambda x: 0.5 * math.erfc(-x / math.sqrt(2 * q))
    assert d2 == pytest.approx(cdf(hi) - cdf(lo), abs=1e-13)


def test_plain_gauss_hermite_misses_kinks_that_panels_catch():
    # Why the panels: 200-node Gauss-Hermite on hard_tanh (kinks at z = +-1/sqrt(q)) is off by
    # more than 1e-4 here; the paneled rule matches the closed form to 1e-12.
    q = 2.0
    x, w = np.polynomial.hermite_e.hermegauss(200)
    gh = np.sum(w * (np.abs(np.sqrt(q) * x) < 1)) / math.sqrt(2 * math.pi)
    exact = math.erf(1 / math.sqrt(2 * q))  # P(|sqrt(q) z| < 1)
    assert abs(gh - exact) > 1e-4
    assert T.moments("hard_tanh", q)[1] == pytest.approx(exact, abs=1e-12)


# --- exact results ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sw, sb", [(0.5, 0.0), (1.0, 0.05), (1.3, 0.5), (2**0.5, 0.0), (1.7, 0.2), (2.0, 0.0)]
)
def test_relu_chi1_is_half_sigma_w_squared(sw, sb):
    assert T.chi1("relu", sw, sb) == pytest.approx(sw**2 / 2, abs=1e-6)


@pytest.mark.parametrize("sw, sb", [(0.5, 0.3), (1.0, 0.05), (1.3, 0.5)])
def test_relu_q_star_closed_form(sw, sb):
    assert T.q_star("relu", sw, sb) == pytest.approx(sb**2 / (1 - sw**2 / 2), rel=1e-10)


def test_tanh_at_the_edge_of_chaos():
    # L(q) = q - 2 q^2 + ...: the iteration reaches q* = 0 only like 1/l; bracketing gets it.
    assert T.q_star("tanh", 1.0, 0.0) == 0.0
    assert T.chi1("tanh", 1.0, 0.0) == 1.0
    assert T.depth_scale("tanh", 1.0, 0.0) == math.inf


def test_selu_self_normalising_fixed_point():
    assert T.q_star("selu", 1.0, 0.0) == pytest.approx(1.0, abs=1e-6)
    assert T.q_star("selu", 1.0, 0.0, q0=0.3) == pytest.approx(1.0, abs=1e-6)  # attracting
    assert T.chi1("selu", 1.0, 0.0) == pytest.approx(1.0716, abs=1e-3)


def test_sigmoid_chi1_bounded_by_max_derivative():
    # sigmoid' <= 1/4, so chi_1 <= sigma_w^2 / 16 (<= sigma_w^2 / 4) everywhere.
    sw, sb = np.meshgrid([0.5, 1.0, 2.0, 4.0, 8.0], [0.0, 0.5, 2.0])
    c = T.chi1("sigmoid", sw, sb)
    assert c.shape == sw.shape
    assert np.all(c <= sw**2 / 16) and np.all(c <= 0.25 * sw**2) and np.all(c > 0)


def test_critical_sigma_w():
    assert T.critical_sigma_w("relu", 0.0) == pytest.approx(math.sqrt(2), abs=1e-9)
    assert T.critical_sigma_w("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)
    line = T.critical_sigma_w("tanh", [0.1, 0.3])  # one call, one critical line
    assert line.shape == (2,) and 1.0 < line[0] < line[1]
    for sb, sw in zip([0.1, 0.3], line, strict=True):
        assert T.chi1("tanh", sw, sb) == pytest.approx(1.0, abs=1e-8)


def test_depth_scale_sign_convention():
    assert T.depth_scale("relu", 1.0, 0.0) == pytest.approx(1 / math.log(2))  # ordered: > 0
    assert T.depth_scale("relu", 2.0, 0.0) == pytest.approx(-1 / math.log(2))  # chaotic: < 0
    assert T.depth_scale("relu", 2**0.5, 0.0) == math.inf


# --- no finite fixed point --------------------------------------------------------------------


def test_no_fixed_point_is_inf_and_chi1_is_the_large_q_limit():
    # relu at (2, 0.1): L(q) = 2 q + 0.01 has no finite fixed point.
    assert T.q_star("relu", 2.0, 0.1) == math.inf
    assert T.chi1("relu", 2.0, 0.1) == pytest.approx(2.0, abs=1e-12)
    # relu at sigma_w^2 = 2, sigma_b > 0: L(q) = q + sigma_b^2, q grows linearly, forever.
    assert T.q_star("relu", 2**0.5, 0.1) == math.inf
    # selu at (2, 0): the factor tends to sigma_w^2 lambda^2 / 2 (FINDINGS measured 2.22).
    assert T.q_star("selu", 2.0, 0.0) == math.inf
    assert T.chi1("selu", 2.0, 0.0) == pytest.approx(2.0 * SELU_LAMBDA**2, rel=1e-7)
    assert T.chi_infinity("gelu", 1.0) == pytest.approx(0.5, rel=1e-7)


def test_fixed_point_depends_on_the_start():
    # gelu at (1.45, 0): L(q) ~ sigma_w^2 q / 4 < q near 0 but ~ 1.05 q at large q, with an
    # unstable fixed point in between: from q0 = 1 the net goes to 0, from q0 = 100 to infinity.
    assert T.q_star("gelu", 1.45, 0.0, q0=1.0) == 0.0
    assert T.chi1("gelu", 1.45, 0.0, q0=1.0) == pytest.approx(1.45**2 / 4, rel=1e-12)
    assert T.q_star("gelu", 1.45, 0.0, q0=100.0) == math.inf
    assert T.chi1("gelu", 1.45, 0.0, q0=100.0) == pytest.approx(1.45**2 / 2, rel=1e-7)
    assert T.q_star("tanh", 1.5, 0.0, q0=0.0) == 0.0  # 0 is a (repelling) fixed point
    q = T.q_star("sigmoid", 1.0, 0.0)
    assert T.q_star("sigmoid", 1.0, 0.0, q0=0.0) == pytest.approx(q)
    assert T.q_star("sigmoid", 1.0, 0.0, q0=1e-20) == pytest.approx(q)  # search reaches up


def test_fixed_point_is_a_fixed_point_and_attracts():
    for name, sw, sb in [("tanh", 1.5, 0.3), ("sigmoid", 1.0, 0.05), ("gelu", 1.0, 0.05)]:
        q = T.q_star(name, sw, sb)
        assert T.length_map(name, q, sw, sb) == pytest.approx(q, rel=1e-10)
        p = T.predict_layers(name, sw, sb, depth=300, q0=1.0)  # the iteration gets there too
        assert p.q[-1] == pytest.approx(q, rel=1e-8)
        assert p.chi[-1] == pytest.approx(T.chi1(name, sw, sb), rel=1e-8)


# --- FINDINGS.md ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, sw, sb, measured",
    [
        ("relu", 1.0, 0.05, 0.5000),
        ("relu", 2.0, 0.0, 1.988),
        ("tanh", 1.5, 0.3, 1.0610),  # the quadrature values FINDINGS quotes for these two
        ("tanh", 2.0, 0.0, 1.3627),
        ("sigmoid", 1.0, 0.05, 0.0557),
        ("gelu", 1.0, 0.05, 0.2521),
    ],
)
def test_chi1_matches_findings(name, sw, sb, measured):
    assert T.chi1(name, sw, sb) == pytest.approx(measured, rel=1e-3 if name != "relu" else 1e-2)


@pytest.mark.parametrize(
    "name, sw, sb, measured",
    [
        # Not yet at the fixed point after 20 layers: compare with the layer-by-layer
        # prediction over the layers FINDINGS averaged (6-19, from q_0 = 1), not with chi_1.
        ("tanh", 1.0, 0.05, 0.898),  # chi_1 = 0.934; finite depth 0.903
        ("selu", 1.0, 0.05, 1.0718),  # chi_1 = 1.0694 (q* = 1.0114); finite depth 1.0695
    ],
)
def test_finite_depth_prediction_matches_findings(name, sw, sb, measured):
    p = T.predict_layers(name, sw, sb, depth=20, q0=1.0)
    assert math.exp(np.mean(np.log(p.chi[5:19]))) == pytest.approx(measured, rel=6e-3)


# --- interface --------------------------------------------------------------------------------


def test_user_functions():
    assert T.chi1(lambda x: jnp.tanh(x), 1.5, 0.3) == pytest.approx(T.chi1("tanh", 1.5, 0.3))
    leaky = functools.partial(activations.get("leaky_relu"), negative_slope=0.2)
    assert T.chi1(leaky, 1.0, 0.1) == pytest.approx((1 + 0.2**2) / 2, abs=1e-12)
    # jnp.abs: kink found numerically; chi = sigma_w^2 exactly, q* = sigma_b^2 / (1 - sigma_w^2)
    assert T.chi1(jnp.abs, 0.8, 0.3) == pytest.approx(0.64, abs=1e-12)
    assert T.q_star(jnp.abs, 0.8, 0.3) == pytest.approx(0.09 / 0.36, rel=1e-10)


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown activation"):
        T.chi1("no_such_activation", 1.0, 0.0)
    with pytest.raises(TypeError):
        T.chi1(3.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        T.q_star("tanh", -1.0, 0.0)
    with pytest.raises(ValueError):
        T.chi("tanh", -1.0, 1.0)


def test_vectorised_over_sigmas_and_q():
    sw, sb = np.array([[1.0], [1.5]]), np.array([0.0, 0.3])
    q = T.q_star("tanh", sw, sb)
    assert q.shape == (2, 2)
    assert q[1, 1] == T.q_star("tanh", 1.5, 0.3)
    assert T.chi("tanh", np.array([0.0, 1.0]), 1.0).shape == (2,)
    assert isinstance(T.chi1("tanh", 1.5, 0.3), float)


def test_predict_layers_relu_closed_form():
    p = T.predict_layers("relu", 1.0, 0.5, depth=4, q0=2.0)
    q, expect = 2.0, []
    for _ in range(4):
        q = q / 2 + 0.25
        expect.append(q)
    np.testing.assert_allclose(p.q, expect, rtol=1e-13)
    np.testing.assert_allclose(p.chi, 0.5, rtol=1e-13)
    np.testing.assert_allclose(p.grad, [0.125, 0.25, 0.5, 1.0], rtol=1e-13)

"""Models: shapes, init schemes, trained PReLU slopes, and depth-independent program size."""

from __future__ import annotations

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from _bench_util import TINY

from bench import config, models, train

HP = {"init_scale": jnp.float32(1.0), "bias_init": jnp.float32(0.0), "slope": jnp.float32(0.25)}


def static(**kw):
    ((s, _),) = config.expand(config.parse({**TINY, **kw}))
    return s


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_mlp_shapes(depth):
    m = models.make_model(static(depth=depth, width=16), (40,), 10)
    p = jax.jit(m.init)(jax.random.PRNGKey(0), HP)
    assert p["first"]["w"].shape == (40, 16)
    assert p["hidden"]["w"].shape == (depth - 1, 16, 16)
    assert p["head"]["w"].shape == (16, 10)
    assert jax.jit(m.apply)(p, jnp.ones((3, 40)), HP).shape == (3, 10)


@pytest.mark.parametrize(("in_shape", "pool"), [((40,), 3), ((12, 12, 3), 2)])
def test_cnn_shapes(in_shape, pool):
    s = static(model="cnn", channels=[4, 4, 8], pool=pool, activation="relu")
    m = models.make_model(s, in_shape, 10)
    p = jax.jit(m.init)(jax.random.PRNGKey(0), HP)
    assert len(p["convs"]) == 3
    out = jax.jit(m.apply)(p, jnp.ones((2, *in_shape)), HP)
    assert out.shape == (2, 10) and bool(jnp.all(jnp.isfinite(out)))


def _weights(init, shape=(400, 400)):
    spec = models.WeightSpec(shape, shape[-2], shape[-1])
    f = jax.jit(lambda k: models.init_weights(k, init, 0.01, [spec])[0])
    return np.asarray(f(jax.random.PRNGKey(1)))


@pytest.mark.parametrize(
    ("init", "var"),
    [
        ("standard", 1 / 1200),
        ("lecun_normal", 1 / 400),
        ("lecun_uniform", 1 / 400),
        ("he_normal", 2 / 400),
        ("he_uniform", 2 / 400),
        ("xavier_normal", 2 / 800),
        ("xavier_uniform", 2 / 800),
        ("gaussian", 0.01**2),
        ("orthogonal", 1 / 400),
    ],
)
def test_init_variance(init, var):
    w = _weights(init)
    assert np.var(w) == pytest.approx(var, rel=0.05)
    if init == "standard":  # Glorot & Bengio's U[-1/sqrt(n), 1/sqrt(n)]
        assert np.abs(w).max() <= 1 / np.sqrt(400)
    if init == "orthogonal":
        np.testing.assert_allclose(w @ w.T, np.eye(400), atol=1e-4)


@pytest.mark.parametrize("init", ["he_normal", "orthogonal"])
def test_stacked_layers_are_independent(init):
    w = _weights(init, (3, 64, 64))
    assert w.shape == (3, 64, 64)
    assert np.var(w) == pytest.approx(2 / 64 if init == "he_normal" else 1 / 64, rel=0.1)
    assert abs(np.corrcoef(w[0].ravel(), w[1].ravel())[0, 1]) < 0.05


def test_init_scale_multiplies_weights_and_bias_init_is_constant():
    m = models.make_model(static(), (8,), 4)
    init = jax.jit(m.init)
    p1 = init(jax.random.PRNGKey(0), HP)
    p2 = init(
        jax.random.PRNGKey(0), {**HP, "init_scale": jnp.float32(2.0), "bias_init": jnp.float32(0.1)}
    )
    for layer in ("first", "hidden", "head"):  # weights scale by sigma_w
        np.testing.assert_allclose(p2[layer]["w"], 2 * p1[layer]["w"], rtol=1e-6)
    assert np.all(np.asarray(p2["hidden"]["b"]) == np.float32(0.1))


@pytest.mark.parametrize(("mode", "shape"), [("layer", ()), ("channel", (8,))])
def test_prelu_slope_is_trained(mode, shape):
    s = static(activation="prelu", prelu_mode=mode, depth=3)
    m = models.make_model(s, (8,), 4)
    p = jax.jit(m.init)(jax.random.PRNGKey(0), HP)
    assert p["first"]["slope"].shape == shape
    assert p["hidden"]["slope"].shape == (2, *shape)
    assert np.all(np.asarray(p["first"]["slope"]) == 0.25)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 8)), jnp.float32)
    g = jax.jit(jax.grad(lambda p: jnp.sum(m.apply(p, x, HP) ** 2)))(p)
    assert float(jnp.abs(g["hidden"]["slope"]).sum()) > 0


def test_activation_hyperparameter_is_the_slope_axis():
    s = static(activation="leaky_relu", depth=1)
    m = models.make_model(s, (8,), 4)
    p = jax.jit(m.init)(jax.random.PRNGKey(0), HP)
    x = -jnp.ones((1, 8))
    apply = jax.jit(m.apply)
    a = apply(p, x, {**HP, "slope": jnp.float32(0.0)})
    b = apply(p, x, {**HP, "slope": jnp.float32(0.5)})
    assert not np.allclose(a, b)


def _count_eqns(jaxpr) -> int:
    n = 0
    for eqn in jaxpr.eqns:
        n += 1
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            n += _count_eqns(sub)
    return n


def test_jaxpr_size_does_not_grow_with_depth():
    sizes = {}
    for depth in (4, 100):
        s = static(depth=depth, width=8)
        f = train.make_train(s, 4)
        d = {"lr": 0.1, "init_scale": 1.0, "bias_init": 0.0, "slope": 0.0}
        data = train.TrainData(
            jnp.ones((64, 8)), jnp.zeros(64, jnp.int32), jnp.ones((8, 8)), jnp.zeros(8, jnp.int32)
        )
        jaxpr = jax.make_jaxpr(f)(d, jax.random.PRNGKey(0), data)
        sizes[depth] = _count_eqns(jaxpr.jaxpr)
    assert sizes[100] <= sizes[4], sizes

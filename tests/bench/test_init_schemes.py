"""Init schemes on non-square layers: every weight's variance from its own fan_in / fan_out.

Square matrices cannot tell fan_in from fan_out, so every layer here has fan_in != fan_out:
the MLP's 40 -> 16 input layer and 16 -> 10 head, and 2-D convolutions 3 -> 12 and 12 -> 4
channels with 5 x 5 kernels, where (as in ``jax.nn.initializers`` and Glorot & Bengio)
fan_in = kh kw c_in and fan_out = kh kw c_out. The expected variances are the papers'
formulas written out here, times ``init_scale`` squared (a gain of 1.5, so a scheme that forgot
the gain fails too).

Tolerance: the estimate is v = mean(w^2) over n independent draws (the true mean is 0), with
Var(v) = sigma^4 (kappa - 1) / n, kappa the kurtosis: 1.8 for a uniform, below 3 for a normal
truncated at +-2, 3 for a Gaussian. With kappa <= 3 the relative standard error is at most
sqrt(2 / n); the test allows 5 of them (n >= 10240: at most 7%), while swapping fan_in and
fan_out changes a fan-in variance by the fan ratio, at least 1.6x here.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _bench_util import TINY

from bench import config, models

GAIN = 1.5
INIT_STD = 0.03
N_KEYS = 64  # networks drawn per scheme; each draw of a layer is independent
Z = 5.0
# Compiled once, run once: skip LLVM's expensive passes (IEEE semantics unchanged).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _trunc_normal_std() -> float:
    """Std of a standard normal truncated to [-2, 2]: 1 - 2 a phi(a) / (2 Phi(a) - 1), a = 2."""
    phi = math.exp(-2.0) / math.sqrt(2 * math.pi)
    return math.sqrt(1 - 4 * phi / math.erf(2 / math.sqrt(2)))


# scheme -> (distribution, variance at gain 1 as a function of (fan_in, fan_out)).
EXPECTED = {
    "standard": ("uniform", lambda i, o: 1 / (3 * i)),  # U[-1/sqrt(i), 1/sqrt(i)]
    "xavier_uniform": ("uniform", lambda i, o: 2 / (i + o)),
    "xavier_normal": ("truncated_normal", lambda i, o: 2 / (i + o)),
    "he_uniform": ("uniform", lambda i, o: 2 / i),
    "he_normal": ("truncated_normal", lambda i, o: 2 / i),
    "lecun_uniform": ("uniform", lambda i, o: 1 / i),
    "lecun_normal": ("truncated_normal", lambda i, o: 1 / i),
    "gaussian": ("normal", lambda i, o: INIT_STD**2),
}

HP = {"init_scale": jnp.float32(GAIN), "bias_init": jnp.float32(0.0), "slope": jnp.float32(0.0)}
MLP_IN, CNN_IN, CLASSES = (40,), (8, 8, 3), 10


def _static(init: str, model: str):
    spec = {**TINY, "init": init, "init_std": INIT_STD, "model": model, "width": 16}
    spec.update(channels=[12, 4], pool=2, activation="relu")
    ((s, _),) = config.expand(config.parse(spec))
    return s


def _draw(init: str, model: str) -> list[tuple[str, np.ndarray, int, int]]:
    """(layer, weights (N_KEYS, *shape), fan_in, fan_out) of N_KEYS freshly drawn networks."""
    in_shape = MLP_IN if model == "mlp" else CNN_IN
    m = models.make_model(_static(init, model), in_shape, CLASSES)
    keys = jax.random.split(jax.random.PRNGKey(7), N_KEYS)
    init = jax.jit(jax.vmap(m.init, in_axes=(0, None)), compiler_options=FAST_COMPILE)
    p = jax.tree.map(np.asarray, init(keys, HP))
    if model == "mlp":
        return [
            ("first", p["first"]["w"], 40, 16),
            ("hidden", p["hidden"]["w"], 16, 16),
            ("head", p["head"]["w"], 16, CLASSES),
        ]
    # 8 x 8 -> two SAME max-pools of stride 2 -> 2 x 2 x 4 features into the head
    return [
        ("conv0", p["convs"][0]["w"], 25 * 3, 25 * 12),
        ("conv1", p["convs"][1]["w"], 25 * 12, 25 * 4),
        ("head", p["head"]["w"], 16, CLASSES),
    ]


def test_every_scheme_is_covered():
    assert set(config.INITS) == {*EXPECTED, "orthogonal"}


@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("init", sorted(EXPECTED))
def test_variance_and_support(init, model):
    dist, variance = EXPECTED[init]
    for name, w, fan_in, fan_out in _draw(init, model):
        var = GAIN**2 * variance(fan_in, fan_out)
        n = w.size
        got = float(np.mean(np.square(w, dtype=np.float64)))
        tol = Z * math.sqrt(2 / n)
        where = f"{init} {model} {name}: fan_in {fan_in}, fan_out {fan_out}"
        assert abs(got / var - 1) < tol, f"{where}: variance {got:.4g}, expected {var:.4g}"
        assert abs(np.mean(w)) < Z * math.sqrt(var / n), where
        # Support: uniform on [-sqrt(3 var), sqrt(3 var)]; truncated normal on +-2 of its
        # underlying std. The largest of n draws lies within 1% of the edge.
        if dist == "uniform":
            edge = math.sqrt(3 * var)
        elif dist == "truncated_normal":
            edge = 2 * math.sqrt(var) / _trunc_normal_std()
        else:
            continue
        if init == "standard":  # Glorot & Bengio's U[-1/sqrt(fan_in), 1/sqrt(fan_in)]
            assert edge == pytest.approx(GAIN / math.sqrt(fan_in))
        top = float(np.abs(w).max())
        assert 0.99 * edge < top <= edge * (1 + 1e-6), f"{where}: max |w| {top}, edge {edge}"


def _assert_orthogonal(w: np.ndarray, rows: int, where: str) -> None:
    """Each of the N_KEYS matrices ``w`` flattened to (rows, cols): the orthonormal side
    (columns if rows >= cols, else rows) is orthonormal up to the gain."""
    mats = w.reshape(w.shape[0], rows, -1).astype(np.float64)
    if rows < mats.shape[2]:
        mats = mats.transpose(0, 2, 1)
    gram = mats.transpose(0, 2, 1) @ mats
    want = GAIN**2 * np.eye(gram.shape[-1])
    np.testing.assert_allclose(gram, np.broadcast_to(want, gram.shape), atol=1e-5, err_msg=where)


def test_orthogonal_mlp():
    for name, w, fan_in, _ in _draw("orthogonal", "mlp"):
        if name == "hidden":  # (N_KEYS, depth - 1, 16, 16): each stacked layer on its own
            w = w.reshape(-1, *w.shape[2:])
        _assert_orthogonal(w, fan_in, f"mlp {name}")


def test_orthogonal_conv_is_jax_nn_orthogonal():
    # jax.nn.initializers.orthogonal (column_axis=-1) reshapes (kh, kw, c_in, c_out) to
    # (kh kw c_in, c_out) = (fan_in, c_out): for fan_in >= c_out the columns are orthonormal,
    # every weight has variance 1/fan_in and the conv preserves the norm of a patch.
    for name, w, fan_in, _ in _draw("orthogonal", "cnn"):
        _assert_orthogonal(w, fan_in, f"cnn {name}")


# --------------------------------------------------------------------------- per-layer stds

# Distinct stds, none a multiple of 2 of another, so a swapped, shifted or ignored one fails.
CNN_STDS = (1e-4, 1e-2, 3e-2, 2e-3)  # cuda-convnet's 18pct is 1e-4, 1e-2, 1e-2, 1e-2
MLP_STDS = (0.05, 0.011, 0.023, 0.037, 0.003)  # depth 4: first, 3 hidden, output


def _draw_stds(model: str, init_std) -> list[tuple[str, np.ndarray]]:
    """(layer, weights (N_KEYS, *shape)) of N_KEYS gaussian networks at gain 1, one entry per
    weight layer in network order (the MLP's stacked hidden layers one by one)."""
    spec = {**TINY, "init": "gaussian", "init_std": init_std, "model": model}
    spec.update(channels=[32, 32, 64], depth=4, width=16, activation="relu")
    ((static, _),) = config.expand(config.parse(spec))
    m = models.make_model(static, MLP_IN if model == "mlp" else CNN_IN, CLASSES)
    keys = jax.random.split(jax.random.PRNGKey(11), N_KEYS)
    init = jax.jit(jax.vmap(m.init, in_axes=(0, None)), compiler_options=FAST_COMPILE)
    p = jax.tree.map(np.asarray, init(keys, {**HP, "init_scale": jnp.float32(1.0)}))
    if model == "mlp":
        hidden = [(f"hidden{i}", p["hidden"]["w"][:, i]) for i in range(3)]
        return [("first", p["first"]["w"]), *hidden, ("head", p["head"]["w"])]
    return [(f"conv{i}", c["w"]) for i, c in enumerate(p["convs"])] + [("head", p["head"]["w"])]


@pytest.mark.parametrize(("model", "stds"), [("cnn", CNN_STDS), ("mlp", MLP_STDS)])
def test_per_layer_stds(model, stds):
    layers = _draw_stds(model, list(stds))
    assert layers[0][1].shape[1:] == ((5, 5, 3, 32) if model == "cnn" else (40, 16))
    assert len(layers) == len(stds)
    for (name, w), std in zip(layers, stds, strict=True):
        got = float(np.mean(np.square(w, dtype=np.float64)))  # Gaussian: kurtosis 3
        tol = Z * math.sqrt(2 / w.size)
        assert abs(got / std**2 - 1) < tol, f"{model} {name}: std {got**0.5:.4g}, expected {std}"


def test_equal_stds_are_the_scalar_and_the_scalar_draw_is_unchanged():
    """A list of equal stds draws exactly the scalar's weights (the config stores it as the
    scalar, and ``init_weights`` scales a tuple of equal values as that value), and the scalar
    draw is still one N(0, 1) sample over the whole network, cut into layers in order."""
    specs = [
        models.WeightSpec((40, 16), 40, 16),
        models.WeightSpec((3, 16, 16), 16, 16),
        models.WeightSpec((16, 10), 16, 10),
    ]
    key = jax.random.PRNGKey(3)
    scalar = models.init_weights(key, "gaussian", INIT_STD, specs)
    as_tuple = models.init_weights(key, "gaussian", (INIT_STD,) * 5, specs)
    flat = np.asarray(jax.random.normal(key, (40 * 16 + 3 * 16 * 16 + 16 * 10,)))
    ends = np.cumsum([0, 40 * 16, 3 * 16 * 16, 16 * 10])
    for sp, a, b, lo, hi in zip(specs, scalar, as_tuple, ends[:-1], ends[1:], strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        want = flat[lo:hi].reshape(sp.shape).astype(np.float64) * INIT_STD
        np.testing.assert_allclose(np.asarray(a), want, rtol=1e-6)
    # Distinct stds on the stack: slice i of the hidden stack is scaled by the i-th std.
    stds = (0.5, 0.1, 0.2, 0.3, 0.7)
    per_layer = models.init_weights(key, "gaussian", stds, specs)
    unit = models.init_weights(key, "gaussian", 1.0, specs)
    for i, s in enumerate(stds[1:4]):
        np.testing.assert_allclose(np.asarray(per_layer[1][i]), np.asarray(unit[1][i]) * s, 1e-6)
    np.testing.assert_allclose(np.asarray(per_layer[0]), np.asarray(unit[0]) * 0.5, 1e-6)
    np.testing.assert_allclose(np.asarray(per_layer[2]), np.asarray(unit[2]) * 0.7, 1e-6)
    with pytest.raises(ValueError, match="init_std: 4 stds for 5 weight layers"):
        models.init_weights(key, "gaussian", stds[:4], specs)
    # The config stores a list of equal values as the value itself (same draw, same run id).
    spec = {**TINY, "init": "gaussian"}
    cfg = config.parse({**spec, "init_std": [INIT_STD] * 3})  # depth 2: 3 weight layers
    assert cfg.init_std == INIT_STD
    assert cfg.run_id() == config.parse({**spec, "init_std": INIT_STD}).run_id()

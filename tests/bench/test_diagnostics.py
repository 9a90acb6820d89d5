"""Per-layer diagnostics: each metric on a network whose answer is known, the perturbation
gradient against hand-written backprop, attenuation against mean-field theory, and the
training / sweep plumbing (off: the same program; on: the agreed arrays and record keys)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _bench_util import TINY

import activations
from activations import theory
from bench import config, data, diagnostics, execute, models, results, summary, sweep, train

N_IN, N_CLASSES = 8, 4


def _setup(activation: str, depth: int = 2, width: int = 8, n: int = 64, **spec):
    static, dyn, _ = diagnostics.static_from_spec(
        {**TINY, "activation": activation, "depth": depth, "width": width, **spec}
    )
    model = models.make_model(static, (N_IN,), N_CLASSES)
    hp = {k: jnp.float32(np.nan if dyn[k] is None else dyn[k]) for k in models.HP_KEYS}
    params = model.init(jax.random.PRNGKey(0), hp)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, N_IN)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, n).astype(np.int32)
    return static, model, params, hp, x, y


def _set(params, path, fn):
    out = jax.tree.map(lambda v: v, params)
    layer = out
    for k in path[:-1]:
        layer = layer[k]
    layer[path[-1]] = fn(layer[path[-1]])
    return out


def test_dead_units_and_sparsity_from_biases():
    static, _, params, hp, x, y = _setup("relu")
    bias = np.full(8, 1e3, np.float32)
    bias[:3] = -1e3  # units 0-2 negative on every example, the other 5 positive on every one
    params = _set(params, ("first", "b"), lambda b: jnp.asarray(bias))
    m = diagnostics.measure(static, params, hp, x, y)
    assert set(m) == set(diagnostics.METRICS)
    assert all(v.shape == (2,) for v in m.values())
    assert m["dead_fraction"][0] == 3 / 8
    assert m["sparsity"][0] == 3 / 8
    assert m["saturation_fraction"][0] == 3 / 8  # relu' = 0 on the zero side
    # A unit that is off on only some examples is not dead: the default net has none dead.
    _, _, params0, _, _, _ = _setup("relu")
    m0 = diagnostics.measure(static, params0, hp, x, y)
    assert m0["dead_fraction"][0] == 0 and 0.3 < m0["sparsity"][0] < 0.7


def test_saturation_with_large_weights():
    static, _, params, hp, x, y = _setup("sigmoid")
    m = diagnostics.measure(static, params, hp, x, y)
    assert m["saturation_fraction"][0] == 0 and m["sparsity"][0] == 0
    big = _set(params, ("first", "w"), lambda w: w * 1e3)
    m = diagnostics.measure(static, big, hp, x, y)
    assert m["saturation_fraction"][0] > 0.95


# phi'(h) / max phi' of the 8 first-layer units: 3 below the documented 1% (one of them below
# 0.1%), 3 between 1% and 10%, so a threshold ten times larger or smaller miscounts them.
_RATIOS = np.array([0.0095, 0.005, 0.0009, 0.0105, 0.02, 0.09, 0.2, 0.5])


def _pre_activation_with_derivative_ratio(activation: str, r: np.ndarray) -> np.ndarray:
    """h > 0 with phi'(h) = r max phi': tanh' = sech^2 (max 1), sigmoid' = s (1 - s) (max 1/4)."""
    if activation == "tanh":
        return np.arccosh(1 / np.sqrt(r))
    s = (1 + np.sqrt(1 - r)) / 2  # s (1 - s) = r / 4, s > 1/2
    return np.log(s / (1 - s))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_saturation_threshold_is_one_percent_of_the_max_derivative(activation):
    static, _, params, hp, x, y = _setup(activation)
    h = _pre_activation_with_derivative_ratio(activation, _RATIOS)
    # Zero weights: every example's pre-activation is the bias, unit by unit.
    params = _set(params, ("first", "w"), jnp.zeros_like)
    params = _set(params, ("first", "b"), lambda b: jnp.asarray(h, jnp.float32))
    m = diagnostics.measure(static, params, hp, x, y)
    assert m["saturation_fraction"][0] == 3 / 8


@pytest.mark.parametrize(("activation", "expect_one"), [("sigmoid", True), ("tanh", False)])
def test_same_sign_fraction(activation, expect_one):
    static, _, params, hp, x, y = _setup(activation)
    m = diagnostics.measure(static, params, hp, x, y)
    assert m["same_sign_fraction"][0] == 0  # layer 1 reads x, which has both signs
    if expect_one:  # every input of layer 2 is positive: a_i * delta_j all share delta's sign
        assert m["same_sign_fraction"][1] == 1
    else:
        assert m["same_sign_fraction"][1] < 0.1


def test_perturbation_gradient_matches_hand_backprop():
    static, model, params, hp, x, y = _setup("tanh")
    p = jax.tree.map(np.asarray, params)
    w1, b1 = p["first"]["w"].astype(np.float64), p["first"]["b"]
    w2, b2 = p["hidden"]["w"][0].astype(np.float64), p["hidden"]["b"][0]
    wh, bh = p["head"]["w"].astype(np.float64), p["head"]["b"]
    h1 = x @ w1 + b1
    a1 = np.tanh(h1)
    h2 = a1 @ w2 + b2
    a2 = np.tanh(h2)
    logits = a2 @ wh + bh
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    d = prob - np.eye(N_CLASSES)[y]  # d(own loss)/d logits, per example
    dh2 = (d @ wh.T) * (1 - a2**2)
    dh1 = (dh2 @ w2.T) * (1 - a1**2)

    def loss(eps):
        logits = model.apply(params, x, hp, eps)
        ce = -jax.nn.log_softmax(logits)[jnp.arange(len(y)), y]
        return jnp.mean(ce)

    eps = models.perturbation(model, params, jnp.asarray(x), hp)
    assert jax.tree.map(jnp.shape, eps) == {"first": (64, 8), "hidden": (1, 64, 8)}
    g = jax.grad(loss)(eps)
    np.testing.assert_allclose(g["first"], dh1 / len(y), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(g["hidden"][0], dh2 / len(y), rtol=1e-4, atol=1e-7)

    m = diagnostics.measure(static, params, hp, x, y)
    np.testing.assert_allclose(m["grad_sq"], [np.mean(dh1**2), np.mean(dh2**2)], rtol=1e-4)
    np.testing.assert_allclose(m["attenuation"][0], np.mean(dh1**2) / np.mean(dh2**2), rtol=1e-4)
    assert np.isnan(m["attenuation"][1])  # padding
    np.testing.assert_allclose(m["q"], [np.mean(h1**2), np.mean(h2**2)], rtol=1e-5)
    np.testing.assert_allclose(m["grad_norm_w"][0], np.linalg.norm(x.T @ dh1 / len(x)), rtol=1e-4)
    np.testing.assert_allclose(m["grad_norm_b"][1], np.linalg.norm(dh2.mean(0)), rtol=1e-4)
    np.testing.assert_allclose(m["act_mean"], [a1.mean(), a2.mean()], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m["act_var"], [a1.var(), a2.var()], rtol=1e-4)


def test_cnn_dead_channels_and_same_sign_by_brute_force():
    static, model, params, hp, x, y = _setup("relu", model="cnn", channels=[4, 6], n=8)
    params["convs"][1]["b"] = params["convs"][1]["b"].at[:2].set(-1e3)  # 2 of 6 channels dead
    m = diagnostics.measure(static, params, hp, x, y)
    assert all(v.shape == (2,) for v in m.values())
    assert m["dead_fraction"][1] == 2 / 6 and m["dead_fraction"][0] == 0

    def own_loss(params, xb, yb):  # one example's loss
        logits = model.apply(params, xb[None], hp)
        return -jax.nn.log_softmax(logits)[0, yb]

    # lax.map, not vmap: XLA CPU runs vmapped convolutions as slow grouped ones
    per_example = jax.jit(lambda p: jax.lax.map(lambda e: jax.grad(own_loss)(p, *e), (x, y)))(
        params
    )
    for layer, conv in enumerate(per_example["convs"]):
        g = np.asarray(conv["w"]).reshape(len(x), -1, conv["w"].shape[-1])  # (B, fan_in, C)
        pos, neg = (g > 0).any(1), (g < 0).any(1)
        expected = (pos ^ neg).sum() / (pos | neg).sum()
        np.testing.assert_allclose(m["same_sign_fraction"][layer], expected, rtol=1e-6)


@pytest.mark.parametrize("sigma_w", [1.0, 1.5])
def test_relu_attenuation_matches_mean_field(sigma_w):
    rng = np.random.default_rng(1)
    ds = data.Dataset(
        rng.normal(size=(512, 64)).astype(np.float32),
        rng.integers(0, 10, 512).astype(np.int32),
        None,
        None,
        10,
        "gaussian",
    )
    spec = {
        "model": "mlp",
        "activation": "relu",
        "depth": 8,
        "width": 512,
        "init": "lecun_normal",
        "init_scale": sigma_w,
        "bias_init": 0.0,
        "steps": 1,
        "eval_every": 1,
        "diag_size": 256,
    }
    m = diagnostics.at_init(spec, seeds=8, dataset=ds)
    assert m["attenuation"].shape == (8, 8)
    measured = np.exp(np.mean(np.log(m["attenuation"][:, :-1]), axis=0))  # per layer
    chi1 = theory.chi1("relu", sigma_w, 0.0)
    np.testing.assert_allclose(measured, chi1, rtol=0.1)


def _data(n=256):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, N_IN)).astype(np.float32)
    return execute.train_data(x, np.argmax(x[:, :4], 1).astype(np.int32), 64)


def test_diagnostics_off_leaves_the_program_unchanged():
    off = config.expand(config.parse({**TINY, "diag_every": 10, "diag_size": 7}))[0][0]
    default = config.expand(config.parse(dict(TINY)))[0][0]
    on = config.expand(config.parse({**TINY, "diagnostics": True}))[0][0]
    dyn = {"lr": 0.1, "seed": 0, "init_scale": 1.0, "bias_init": 0.0, "slope": np.nan}
    dyn = {k: jnp.asarray(v, jnp.int32 if k == "seed" else jnp.float32) for k, v in dyn.items()}
    key, d = jax.random.PRNGKey(0), _data()

    def jaxpr(static):
        return str(jax.make_jaxpr(train.make_train(static, N_CLASSES))(dyn, key, d))

    assert jaxpr(off) == jaxpr(default)
    assert not any(
        "diag" in k for k in jax.eval_shape(train.make_train(off, N_CLASSES), dyn, key, d)
    )
    assert len(jaxpr(on)) > len(jaxpr(default))
    # The model without a perturbation traces the operations it always did (no zeros added).
    model = models.make_model(default, (N_IN,), N_CLASSES)
    hp = {"init_scale": 1.0, "bias_init": 0.0, "slope": jnp.nan}
    params = model.init(key, hp)

    phi = activations.get("tanh")

    def reference_apply(params, x, hp):  # bench.models.make_mlp's apply before perturbations
        h = phi(x.reshape(x.shape[0], -1) @ params["first"]["w"] + params["first"]["b"])
        h, _ = jax.lax.scan(lambda h, p: (phi(h @ p["w"] + p["b"]), None), h, params["hidden"])
        return h @ params["head"]["w"] + params["head"]["b"]

    ours = jax.make_jaxpr(model.apply)(params, d.x_eval, hp)
    assert str(ours) == str(jax.make_jaxpr(reference_apply)(params, d.x_eval, hp))


def test_config_keys_validated():
    assert config.parse({**TINY, "diagnostics": True}).diag_every == TINY["eval_every"]
    for bad in ({"diag_every": 3}, {"diag_every": -5}, {"diag_every": 40}):
        with pytest.raises(ValueError, match=r"^diag_every"):
            config.parse({**TINY, **bad})
    with pytest.raises(ValueError, match=r"^diag_size"):
        config.parse({**TINY, "diag_size": 0})
    with pytest.raises(ValueError, match=r"^diagnostics"):
        config.parse({**TINY, "diagnostics": 1})
    # Without diagnostics the run id is what it was before the keys existed.
    assert config.parse({**TINY, "diag_size": 9}).run_id() == config.parse(dict(TINY)).run_id()
    assert config.parse({**TINY, "diagnostics": True}).run_id() != config.parse(TINY).run_id()


def test_sweep_writes_diagnostics(tmp_path):
    spec = {
        **TINY,
        "lr": [0.3, 1e6],
        "seed": [0, 1],
        "diagnostics": True,
        "diag_every": 10,
        "loss_bound": 1e4,
    }
    cfg = config.parse(spec)
    run_dir = sweep.run_sweep(cfg, tmp_path, progress=False, report=False)
    (group,) = sweep.groups(cfg)
    curves = np.load(results.curves_path(run_dir, group.id))
    np.testing.assert_array_equal(curves["diag_steps"], [0, 10, 20])
    for m in diagnostics.METRICS:
        assert curves[f"diag_{m}"].shape == (4, 3, TINY["depth"]), m
    recs = {r["config_id"]: r for r in results.read_records(run_dir)}
    for j, cid in enumerate(group.config_ids):
        r = recs[cid]
        for m in diagnostics.METRICS:
            assert len(r[f"init_{m}"]) == len(r[f"final_{m}"]) == TINY["depth"]
        assert r["init_q"] == pytest.approx(curves["diag_q"][j, 0].tolist(), rel=1e-6)
        assert r["init_attenuation"][-1] is None  # NaN padding -> null
        if r["diverged"]:  # final = last point at or before the diverging step: step 0 here
            assert r["final_q"] == r["init_q"]
        else:
            assert r["final_q"] == pytest.approx(curves["diag_q"][j, -1].tolist(), rel=1e-6)
    assert any(r["diverged"] for r in recs.values())

    # The report: a per-layer table and the gradient figure.
    s = summary.write_report(run_dir)
    d = s["settings"][0]["groups"]["tanh"]["diagnostics"]
    assert len(d["init_grad_sq"]) == len(d["final_same_sign_fraction"]) == TINY["depth"]
    md = (run_dir / "summary.md").read_text()
    assert "## Per-layer diagnostics" in md and "| 2 |" in md
    assert (run_dir / "grad_norms.png").read_bytes().startswith(b"\x89PNG")

    # Training itself is untouched by the measurements.
    ds = data.load(cfg.axes["dataset"][0], **cfg.data)
    plain = execute.run_group(
        config.expand(config.parse({**spec, "diagnostics": False}))[0][0],
        group.configs,
        execute.train_data(ds.x_train, ds.y_train, cfg.eval_size),
        ds.num_classes,
    )[0]
    for k in ("loss", "eval_error"):
        np.testing.assert_allclose(curves[k], plain[k], rtol=1e-6, equal_nan=True)
    # at_init gives step 0 of the sweep for the same seed.
    init = diagnostics.at_init({**spec, "lr": 0.3}, seeds=[0, 1], dataset=ds)
    np.testing.assert_allclose(init["q"], curves["diag_q"][[0, 1], 0], rtol=1e-5)

"""Claim 8 (zero-centring with controls): the harness options it adds and the claim module.

- ``act_offset`` / ``fold_offset`` in ``bench.models``: against a float64 numpy forward pass,
  and the fold against the algebra it relies on (same function; weight gradients shifted by
  ``c x`` the bias gradient);
- their config validation and run ids (unchanged at the defaults);
- ``saturation_rtol`` in ``bench.diagnostics``: against a numpy count on the traced
  pre-activations;
- the claim's zig-zag loop: its per-unit cosines against numpy, its training against
  ``bench.train`` (same losses step by step);
- the verdict on hand-made summaries, and the tiny run end to end.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bench import config, diagnostics, models, reproduce
from bench.reproduce import saturation
from bench.train import TrainData, make_train
from tests._utils import x64
from tests.bench.test_reproduce_training import check_protocol

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"
N_IN, WIDTH, DEPTH, CLASSES = 6, 5, 4, 3


def _static(**kw):
    spec = {
        "dataset": "mnist1d",
        "activation": "sigmoid",
        "depth": DEPTH,
        "width": WIDTH,
        "init": "gaussian",
        "init_std": 0.7,
        **kw,
    }
    static, dyn, _ = diagnostics.static_from_spec(spec)
    hp = {k: jnp.float32(np.nan if dyn[k] is None else dyn[k]) for k in models.HP_KEYS}
    return static, hp


def _np_phi(name, h):
    return 1 / (1 + np.exp(-h)) if name == "sigmoid" else np.maximum(h, 0)


def _np_forward(params, x, act, offsets):
    """float64 reference: a_l = phi(h_l) - c_l, logits from the last a."""
    p = jax.tree.map(lambda v: np.asarray(v, np.float64), params)
    a = _np_phi(act, x @ p["first"]["w"] + p["first"]["b"]) - offsets[0]
    for k in range(DEPTH - 1):
        a = _np_phi(act, a @ p["hidden"]["w"][k] + p["hidden"]["b"][k]) - offsets[k + 1]
    return a @ p["head"]["w"] + p["head"]["b"]


@pytest.mark.parametrize("act", ["sigmoid", "relu"])
def test_act_offset_matches_a_numpy_forward_pass(act):
    offs = [0.1, -0.2, 0.3, 0.45]
    static, hp = _static(activation=act, act_offset=offs)
    model = models.make_model(static, (N_IN,), CLASSES)
    params = model.init(jax.random.PRNGKey(3), hp)
    x = np.random.default_rng(0).normal(size=(7, N_IN)).astype(np.float32)
    got = np.asarray(model.apply(params, jnp.asarray(x), hp), np.float64)
    want = _np_forward(params, x.astype(np.float64), act, offs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the default adds nothing: offset 0 is the plain network
    plain, _ = _static(activation=act)
    p0 = models.make_model(plain, (N_IN,), CLASSES).init(jax.random.PRNGKey(3), hp)
    want0 = _np_forward(p0, x.astype(np.float64), act, [0.0] * DEPTH)
    got0 = models.make_model(plain, (N_IN,), CLASSES).apply(p0, jnp.asarray(x), hp)
    np.testing.assert_allclose(np.asarray(got0, np.float64), want0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act", ["sigmoid", "relu"])
def test_fold_offset_keeps_the_function_and_centres_the_weight_gradients(act):
    offs = [0.5, 0.25, 0.4, 0.3]
    plain, hp = _static(activation=act)
    cen, _ = _static(activation=act, act_offset=offs, fold_offset=True)
    mp, mc = (models.make_model(s, (N_IN,), CLASSES) for s in (plain, cen))
    key = jax.random.PRNGKey(7)
    pp, pc = mp.init(key, hp), mc.init(key, hp)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(9, N_IN)), jnp.float32)
    y = jnp.asarray(np.arange(9) % CLASSES, jnp.int32)
    np.testing.assert_allclose(mc.apply(pc, x, hp), mp.apply(pp, x, hp), rtol=1e-5, atol=1e-5)

    def loss(model, p):
        logits = model.apply(p, x, hp)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(9), y])

    gp, gc = jax.grad(lambda p: loss(mp, p))(pp), jax.grad(lambda p: loss(mc, p))(pc)
    # (a - c)^T delta = a^T delta - c 1^T delta: each weight column loses c x its bias gradient
    want_hidden = (
        gp["hidden"]["w"] - np.asarray(offs[:-1])[:, None, None] * gp["hidden"]["b"][:, None]
    )
    np.testing.assert_allclose(gc["hidden"]["w"], want_hidden, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        gc["head"]["w"], gp["head"]["w"] - offs[-1] * gp["head"]["b"][None], rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(gc["first"]["w"], gp["first"]["w"], rtol=1e-4, atol=1e-7)


def test_offset_config_validation_and_run_ids():
    base = {"experiment": "x", "depth": 3}
    for bad, key in (
        ({"act_offset": float("nan")}, "act_offset"),
        ({"act_offset": "half"}, "act_offset"),
        ({"act_offset": [0.1, 0.2]}, "act_offset"),  # 3 hidden layers
        ({"act_offset": []}, "act_offset"),
        ({"fold_offset": "yes"}, "fold_offset"),
        ({"fold_offset": True, "model": "cnn", "channels": [4, 4, 4]}, "fold_offset"),
        ({"saturation_rtol": 0.0}, "saturation_rtol"),
        ({"saturation_rtol": 1.5}, "saturation_rtol"),
    ):
        with pytest.raises(ValueError, match=f"^{key}"):
            config.parse({**base, **bad})
    h = config.parse(base).config_hash()
    # the ids of these configs before the keys existed (bench/config.py at commit 452b6b7)
    assert h == "cd1e9c9e89"
    assert config.parse({**base, "diagnostics": True}).config_hash() == "6178ff0c65"
    defaults = {"act_offset": 0.0, "fold_offset": False, "saturation_rtol": 0.01}
    assert config.parse({**base, **defaults}).config_hash() == h
    assert config.parse({**base, "act_offset": 0.5}).config_hash() != h
    assert config.parse({**base, "saturation_rtol": 0.1}).config_hash() != h
    # equal values are one offset (the same network, the same id)
    same = config.parse({**base, "act_offset": [0.5, 0.5, 0.5]})
    assert same.act_offset == 0.5
    assert same.config_hash() == config.parse({**base, "act_offset": 0.5}).config_hash()
    assert config.parse({**base, "act_offset": [0.1, 0.2, 0.3]}).act_offset == (0.1, 0.2, 0.3)


@pytest.mark.parametrize("rtol", [0.01, 0.1, 0.5])
def test_saturation_rtol_counts_against_numpy(rtol):
    static, hp = _static(init_std=3.0, saturation_rtol=rtol, act_offset=0.5, fold_offset=True)
    model = models.make_model(static, (N_IN,), CLASSES)
    params = model.init(jax.random.PRNGKey(0), hp)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, N_IN)).astype(np.float32)
    y = (np.arange(64) % CLASSES).astype(np.int32)
    m = diagnostics.measure(static, params, {"slope": None}, x, y)
    _, layers = model.trace(params, jnp.asarray(x), hp)
    pres = [layers["first"]["pre"], *layers["hidden"]["pre"]]
    for i, h in enumerate(pres):
        s = 1 / (1 + np.exp(-np.asarray(h, np.float64)))
        want = np.mean(s * (1 - s) < rtol * 0.25)
        assert m["saturation_fraction"][i] == pytest.approx(want, abs=1e-6)
    # act_mean is what the next layer sees: sigmoid - 1/2
    post = np.asarray(layers["hidden"]["post"][-1], np.float64)
    assert m["act_mean"][-1] == pytest.approx(post.mean(), abs=1e-6)
    s_last = 1 / (1 + np.exp(-np.asarray(pres[-1], np.float64)))
    np.testing.assert_allclose(post, s_last - 0.5, atol=1e-6)


def test_unit_cosines_against_numpy():
    rng = np.random.default_rng(0)

    def tree():
        return {
            "first": {"w": rng.normal(size=(N_IN, WIDTH))},
            "hidden": {"w": rng.normal(size=(DEPTH - 1, WIDTH, WIDTH))},
            "head": {"w": rng.normal(size=(WIDTH, CLASSES))},
        }

    g, prev = tree(), tree()
    g["hidden"]["w"][1, :, 2] = 0.0  # a unit with no gradient is left out, not counted as 0
    with x64():
        got = np.asarray(saturation.unit_cosines(g, prev))
        neg = jax.tree.map(lambda v: -v, prev)
        opposite = np.asarray(saturation.unit_cosines(prev, neg))

    def ref(a, b):  # (fan_in, units)
        cs = []
        for j in range(a.shape[1]):
            na, nb = np.linalg.norm(a[:, j]), np.linalg.norm(b[:, j])
            if na > 0 and nb > 0:
                cs.append(a[:, j] @ b[:, j] / (na * nb))
        return np.mean(cs)

    want = [ref(g["first"]["w"], prev["first"]["w"])]
    want += [ref(g["hidden"]["w"][k], prev["hidden"]["w"][k]) for k in range(DEPTH - 1)]
    want += [ref(g["head"]["w"], prev["head"]["w"])]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    np.testing.assert_allclose(opposite, -1.0, rtol=1e-12)  # opposite updates


def test_zigzag_loop_trains_exactly_as_bench_train():
    static, hp = _static(
        activation="relu",
        act_offset=[0.3, 0.2, 0.1, 0.2],
        fold_offset=True,
        steps=20,
        eval_every=10,
        batch_size=8,
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, N_IN)).astype(np.float32)
    y = (rng.integers(0, CLASSES, 50)).astype(np.int32)
    lr = 0.2
    dyn = {**hp, "lr": jnp.float32(lr)}
    train = jax.jit(make_train(static, CLASSES))
    ref = train(dyn, jax.random.PRNGKey(4), TrainData(x, y, x[:16], y[:16]))
    fn = saturation.zigzag_program(static, (N_IN,), CLASSES, 10)
    out = fn(jax.random.PRNGKey(4), jnp.float32(lr), hp, x, y, x[:16], y[:16], 2)
    np.testing.assert_allclose(out["loss"], ref["loss"], rtol=1e-5)
    assert out["cos"].shape == (2, DEPTH + 1)
    assert out["diag_saturation_fraction"].shape == (3, DEPTH)


# --------------------------------------------------------------------------- verdict


def r(value, lo, hi, bound="exact"):
    return {"ratio": value, "bound": bound, "ci": [lo, hi], "ci_bound": bound, "paired": True}


def _s(sig, relu):
    return {"ratios": {k: v for k, v in (("sigmoid", sig), ("relu", relu)) if v is not None}}


@pytest.mark.parametrize(
    "s, want",
    [
        (_s(r(1.6, 1.3, 2.0), r(1.2, 1.05, 1.4)), HELD),
        (_s(r(1.6, 1.3, 2.0), r(0.8, 0.7, 0.9)), NOT_HELD),  # centred relu slower
        (_s(r(0.7, 0.5, 0.9), r(1.2, 1.05, 1.4)), NOT_HELD),
        (_s(r(1.6, 1.3, 2.0), r(1.1, 0.9, 1.3)), INCONCLUSIVE),
        (_s(r(1.6, 1.3, None, "lower"), r(1.2, 1.05, 1.4)), HELD),  # plain censored: >= 1.6
        (_s(r(None, None, None, "undetermined"), r(1.2, 1.05, 1.4)), INCONCLUSIVE),
        (_s(r(1.6, 1.3, 2.0), None), INCONCLUSIVE),  # a pair missing
    ],
)
def test_verdict(s, want):
    assert saturation.verdict(s)[0] == want


def test_zigzag_and_saturation_stats_on_hand_made_loops():
    def loop(cos_seed_means, sat_end, diverged=None):
        s = len(cos_seed_means)
        cos = np.zeros((s, 2, DEPTH + 1))
        cos[:, :, 1:] = np.asarray(cos_seed_means)[:, None, None]
        cos[:, :, 0] = 0.9  # layer 1 is a control, not in the mean
        sat = np.zeros((s, 3, DEPTH))
        sat[:, -1, 1:] = sat_end
        sat[:, -1, 0] = 1.0  # layer 1 left out too
        return {
            "lr": 0.1,
            "cos": cos,
            "diag_saturation_fraction": sat,
            "diverged": diverged or [False] * s,
        }

    p = loop([-0.3, -0.2, -0.25, -0.35], 0.4)
    c = loop([-0.05, 0.0, -0.1, 0.02], 0.2, diverged=[False, False, False, True])
    z = saturation.zigzag_stats(p, c)
    assert z["plain"]["mean"] == pytest.approx(-0.275)
    assert z["centred"]["mean"] == pytest.approx(-0.05) and z["centred"]["diverged"] == 1
    assert z["diff"]["n"] == 3 and z["diff"]["mean"] == pytest.approx((0.25 + 0.2 + 0.15) / 3)
    assert z["diff"]["ci"][0] > 0
    st = saturation.saturation_stats(p)
    assert st["end"]["mean"] == pytest.approx(0.4) and st["init"]["mean"] == 0.0


# --------------------------------------------------------------------------- end to end


def test_tiny_run_writes_the_report(tmp_path: Path):
    s = reproduce.run("saturation", out=tmp_path, tiny=True)
    d = tmp_path / "reproductions" / "saturation"
    report = (d / "REPORT.md").read_text()
    heads = re.findall(r"^## (\w+)", report, flags=re.M)
    assert heads == ["Answer", "Claim", "Setup", "Results", "Verdict"]
    for f in ("training.png", "zigzag.png", "saturation.png"):
        assert (d / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({f})" in report
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] in (HELD, NOT_HELD, INCONCLUSIVE) and summary["answer"]
    assert summary["verdict"] == s["verdict"]
    assert f"**{summary['status'].capitalize()}.**" in report.split("## Claim")[0]
    assert set(summary["members"]) == {
        "sigmoid/plain",
        "sigmoid/centred",
        "relu/plain",
        "relu/centred",
    }
    for k, p in summary["protocol"].items():
        check_protocol(p, Path(summary["run_dirs"][k]))
    for pair in ("sigmoid", "relu"):
        su = summary["setup"][pair]
        assert su["chi1"] == pytest.approx(1.0, abs=1e-6)
        assert len(su["offsets"]) == 4
        c = summary["checks"][pair]
        # the identity, as a sanity check: plain inputs all positive, centred ones not
        assert c["same_sign_upper"]["plain"] == 1.0 and c["same_sign_upper"]["centred"] < 0.5
        assert c["grad_sq_ratio_max_dev"] < 1e-4  # the same network at init
        assert summary["ratios"][pair]["paired"]
    assert summary["setup"]["sigmoid"]["offsets"] == [0.5] * 4
    assert summary["setup"]["sigmoid"]["sigma_w"] == pytest.approx(10.149, abs=1e-3)
    assert summary["setup"]["relu"]["sigma_w"] == pytest.approx(math.sqrt(2), abs=1e-6)

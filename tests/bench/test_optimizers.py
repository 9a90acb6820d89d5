"""Every optimizer of the harness against the textbook update rules in numpy float64.

A tiny least-squares model (w: 3 x 2, b: 2) takes three steps through
``bench.train.make_optimizer``; the reference recomputes the gradients analytically and the
updates from the formulas, in the conventions optax documents:

- sgd: p -= lr g
- momentum (optax.sgd's trace): v = g + mu v; p -= lr v
- nesterov: v = g + mu v; p -= lr (g + mu v)
- adam: m = b1 m + (1 - b1) g, s = b2 s + (1 - b2) g^2, bias-corrected by 1 - b^t;
  p -= lr m_hat / (sqrt(s_hat) + eps), b1 = 0.9, b2 = 0.999, eps = 1e-8.

The momentum is 0.7, not the default 0.9, so an optimizer ignoring the configured value
fails, and the three steps see three different gradients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _bench_util import TINY

from bench import config, train

LR, MU, STEPS = 0.1, 0.7, 3
B1, B2, EPS = 0.9, 0.999, 1e-8

_rng = np.random.default_rng(0)
X = _rng.normal(size=(16, 3))
T = _rng.normal(size=(16, 2))
P0 = {"w": _rng.normal(size=(3, 2)), "b": _rng.normal(size=2)}


def _grads(p):
    """Gradient of mean_i 0.5 |x_i w + b - t_i|^2."""
    r = X @ p["w"] + p["b"] - T
    return {"w": X.T @ r / len(X), "b": r.mean(0)}


def reference(optimizer: str) -> list[dict[str, np.ndarray]]:
    """Parameters after each of STEPS steps, float64."""
    p = {k: v.copy() for k, v in P0.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    m = {k: np.zeros_like(x) for k, x in p.items()}
    s = {k: np.zeros_like(x) for k, x in p.items()}
    out = []
    for t in range(1, STEPS + 1):
        g = _grads(p)
        for k in p:
            if optimizer == "sgd":
                u = g[k]
            elif optimizer in ("momentum", "nesterov"):
                v[k] = g[k] + MU * v[k]
                u = v[k] if optimizer == "momentum" else g[k] + MU * v[k]
            else:
                m[k] = B1 * m[k] + (1 - B1) * g[k]
                s[k] = B2 * s[k] + (1 - B2) * g[k] ** 2
                m_hat, s_hat = m[k] / (1 - B1**t), s[k] / (1 - B2**t)
                u = m_hat / (np.sqrt(s_hat) + EPS)
            p[k] = p[k] - LR * u
        out.append({k: x.copy() for k, x in p.items()})
    return out


def harness(optimizer: str) -> list[dict[str, np.ndarray]]:
    ((static, _),) = config.expand(config.parse({**TINY, "optimizer": optimizer, "momentum": MU}))
    opt = train.make_optimizer(static, jnp.float32(LR))
    x, t = jnp.asarray(X, jnp.float32), jnp.asarray(T, jnp.float32)

    def loss(p):
        return jnp.mean(0.5 * jnp.sum((x @ p["w"] + p["b"] - t) ** 2, axis=1))

    @jax.jit
    def step(p, state):
        updates, state = opt.update(jax.grad(loss)(p), state, p)
        return optax.apply_updates(p, updates), state

    p = {k: jnp.asarray(v, jnp.float32) for k, v in P0.items()}
    state, out = opt.init(p), []
    for _ in range(STEPS):
        p, state = step(p, state)
        out.append({k: np.asarray(v, np.float64) for k, v in p.items()})
    return out


def test_every_optimizer_is_covered():
    assert set(config.OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adam"}


@pytest.mark.parametrize("optimizer", config.OPTIMIZERS)
def test_first_steps_match_the_textbook(optimizer):
    want, got = reference(optimizer), harness(optimizer)
    for t, (g, w) in enumerate(zip(got, want, strict=True), 1):
        for k in w:
            np.testing.assert_allclose(
                g[k], w[k], rtol=1e-5, atol=1e-6, err_msg=f"{optimizer} step {t} {k}"
            )


def test_the_rules_differ_on_this_problem():
    # The reference separates the rules (else the test above could not tell them apart).
    final = {o: reference(o)[-1]["w"] for o in config.OPTIMIZERS}
    names = list(final)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(final[a] - final[b]).max() > 1e-2, (a, b)

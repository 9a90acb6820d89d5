"""Held-out errors: the test split at the end and at the target, a validation split carved
from (and kept out of) the training set."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from _bench_util import TINY

from bench import config, execute, sweep, train

SPEC = {**TINY, "steps": 40, "target": 0.45, "lr": [1.0, 0.001], "seed": [0, 1], "val_size": 64}


@pytest.mark.parametrize("n, batch", [(10, 3), (12, 4), (5, 50), (1, 1)])
def test_error_rate_counts_every_example_once(n, batch):
    rng = np.random.default_rng(n)
    w = jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)
    x = jnp.asarray(rng.normal(size=(n, 3)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 4, n), jnp.int32)
    got = train._error_rate(lambda p, xb, hp: xb @ p, w, None, x, y, batch)
    want = np.mean(np.argmax(np.asarray(x) @ np.asarray(w), -1) != np.asarray(y))
    assert float(got) == pytest.approx(want, abs=1e-7)


def test_validation_split_is_held_out_of_training():
    x = np.arange(100, dtype=np.float32)[:, None]
    y = np.arange(100, dtype=np.int32) % 4
    d = execute.train_data(x, y, eval_size=10, x_test=x[:5], y_test=y[:5], val_size=30)
    np.testing.assert_array_equal(d.x_val[:, 0], np.arange(70, 100))
    np.testing.assert_array_equal(d.x_train[:, 0], np.arange(70))  # minibatches come from here
    np.testing.assert_array_equal(d.x_eval[:, 0], np.arange(10))
    np.testing.assert_array_equal(d.y_test, y[:5])


def _group(spec):
    cfg = config.parse(spec)
    (group,) = sweep.groups(cfg)
    data, num_classes = sweep._load_data(cfg, group.static.dataset)
    return cfg, group, data, num_classes


def test_held_out_errors_at_the_end_and_at_the_target():
    cfg, group, data, k = _group(SPEC)
    metrics, _ = execute.run_group(group.static, group.configs, data, k, strategy="vmap")
    recs = sweep.make_records(cfg, group, metrics, None)
    reached = [r for r in recs if r["reached"]]
    assert reached and len(reached) < len(recs)  # lr 0.001 never gets there
    for r in recs:
        assert 0 <= r["test_error"] <= 1 and 0 <= r["val_error"] <= 1
        if not r["reached"]:
            assert r["test_error_at_target"] is None and r["val_error_at_target"] is None

    # The error at the target is the final error of the same run cut at the step it got there
    # (the first lane to get there, so that the cut run is shorter than the budget).
    r = min(reached, key=lambda r: r["steps_to_target"])
    j = recs.index(r)
    cut = dataclasses.replace(group.static, steps=r["steps_to_target"])
    m, _ = execute.run_group(cut, [group.configs[j]], data, k, strategy="vmap")
    assert float(m["test_error"][0]) == r["test_error_at_target"]
    assert float(m["val_error"][0]) == r["val_error_at_target"]

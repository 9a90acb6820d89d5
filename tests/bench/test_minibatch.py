"""Minibatches: a new one every step, drawn uniformly from the whole training set, and the
same for lanes that differ only in learning rate (common random numbers, ``bench.train``).

The batches are read back from the training gradients, not from the sampler: example i is the
one-hot input e_i, so the first layer's weight gradient dL/dW = sum_b x_b delta_b^T is nonzero
exactly in the rows of the examples in the batch. A probe records those rows at every step.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from _bench_util import TINY

from bench import config, execute

N, BATCH, STEPS = 32, 4, 128
LRS = (0.05, 0.5)


def _rows_in_batch(params, grads):
    return {"in_batch": jnp.any(grads["first"]["w"] != 0, axis=1)}


@pytest.fixture(scope="module")
def batches() -> np.ndarray:
    """(seed, lr, step, example): whether the example is in that step's minibatch."""
    spec = {**TINY, "batch_size": BATCH, "steps": STEPS, "eval_every": STEPS, "eval_size": N}
    cfg = config.parse({**spec, "lr": list(LRS), "seed": [0, 1]})
    ((static, configs),) = config.expand(cfg)
    y = np.random.default_rng(0).integers(0, 4, N).astype(np.int32)
    data = execute.train_data(np.eye(N, dtype=np.float32), y, N)
    m, _ = execute.run_group(static, configs, data, 4, probe=_rows_in_batch)
    lane = {(c["seed"], c["lr"]): j for j, c in enumerate(configs)}
    rows = np.asarray(m["in_batch"])
    return np.stack([np.stack([rows[lane[s, lr]] for lr in LRS]) for s in (0, 1)])


def test_every_batch_has_its_examples(batches):
    per_step = batches.sum(-1)
    assert (per_step >= 1).all() and (per_step <= BATCH).all()


def test_batches_change_from_step_to_step(batches):
    b = batches[0, 0]
    distinct = {row.tobytes() for row in b}
    assert len(distinct) > STEPS * 0.9, f"{len(distinct)} distinct batches in {STEPS} steps"
    assert (b[1:] != b[:-1]).any(-1).all(), "two consecutive steps drew the same batch"


def test_batches_cover_the_training_set_uniformly(batches):
    counts = batches[0, 0].sum(0)
    # 512 draws over 32 examples: each appears ~16 times (binomial sd ~4); none is missed.
    assert (counts > 0).all(), counts
    assert 4 < counts.min() and counts.max() < 32, counts


def test_lanes_differing_only_in_lr_see_the_same_batches(batches):
    for seed in range(2):
        np.testing.assert_array_equal(batches[seed, 0], batches[seed, 1])


def test_seeds_draw_different_batches(batches):
    assert (batches[0, 0] != batches[1, 0]).any(-1).mean() > 0.9

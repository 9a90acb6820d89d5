"""One training run as one ``lax.scan``: ``make_train(static, num_classes) -> train``.

``train(dynamic, key, data) -> metrics`` is a pure function of traced values only, so a group
runs it vmapped, chunked or sequentially over its configurations (``bench.execute``) from a
single trace. The data arrays are arguments rather than closed-over constants: constants would
be baked into the compiled program (slow to compile, duplicated per group).

Per step it records the minibatch loss and error; every ``eval_every`` steps (and at step 0)
the error on the first ``eval_size`` training examples. A lane whose loss is not finite or
exceeds ``loss_bound`` (or whose update is not finite) is marked diverged at that step and its
parameters and optimizer state are frozen with ``jnp.where``, so NaNs never reach its later
steps (or, through a vmap, its neighbours); its later metrics read NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

import activations
from bench.config import GroupStatic
from bench.models import make_model

# Extra per-step metrics (e.g. per-layer diagnostics): probe(params, grads) -> dict of arrays,
# stacked by the scan next to "loss" and "minibatch_error".
Probe = Callable[[Any, Any], dict[str, jax.Array]]


# numpy on the host (``bench.execute.train_data``), jax.Array once placed on the devices.
HostOrDevice = jax.Array | np.ndarray


class TrainData(NamedTuple):
    x_train: HostOrDevice  # (N, ...) float32
    y_train: HostOrDevice  # (N,) int32
    x_eval: HostOrDevice  # the first eval_size training examples
    y_eval: HostOrDevice
    # the data set's test split: error at the end and at target
    x_test: HostOrDevice | None = None
    y_test: HostOrDevice | None = None
    # held out from training (val_size): for choosing on accuracy
    x_val: HostOrDevice | None = None
    y_val: HostOrDevice | None = None


def make_optimizer(static: GroupStatic, lr: jax.Array) -> optax.GradientTransformation:
    if static.optimizer == "sgd":
        return optax.sgd(lr)
    if static.optimizer == "momentum":
        return optax.sgd(lr, momentum=static.momentum)
    if static.optimizer == "nesterov":
        return optax.sgd(lr, momentum=static.momentum, nesterov=True)
    if static.optimizer == "adam":
        return optax.adam(lr)
    raise ValueError(f"optimizer: unknown optimizer {static.optimizer!r}")


def _tree_where(cond: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _tree_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def make_train(
    static: GroupStatic,
    num_classes: int,
    probe: Probe | None = None,
    on_chunk: Callable[[dict[str, jax.Array], jax.Array], None] | None = None,
) -> Callable[[dict[str, jax.Array], jax.Array, TrainData], dict[str, jax.Array]]:
    """Build ``train(dynamic, key, data) -> metrics`` for one group.

    ``on_chunk(dynamic, eval_error)``, traced once per chunk of ``eval_every`` steps after its
    evaluation, may add side effects such as a progress callback (``bench.execute``).

    ``dynamic``: scalars ``lr``, ``init_scale``, ``bias_init``, ``slope`` (others ignored).
    Returns a dict of arrays: ``loss`` and ``minibatch_error`` (steps,), ``eval_error``
    (num_evals,) at steps 0, eval_every, ..., steps; ``diverged`` () bool and
    ``divergence_step`` () int32 (-1 when finite throughout); plus the probe's keys (steps, ...)
    and, with ``static.diagnostics``, ``diag_<metric>`` (num_diags, L) at ``diag_steps``.
    """
    n_chunks, every, batch = static.steps // static.eval_every, static.eval_every, static.batch_size
    if static.diagnostics:
        from bench import diagnostics

        d, e = static.diag_every, static.eval_every
        if d <= 0 or d % e or static.steps % d:
            raise ValueError(
                f"diag_every: need a multiple of eval_every ({e}) dividing steps, got {d}"
            )
        per_block = static.diag_every // static.eval_every

    def train(dynamic, key, data: TrainData):
        model = make_model(static, data.x_train.shape[1:], num_classes)
        hp = {k: dynamic[k] for k in ("init_scale", "bias_init", "slope")}
        k_init, k_data = jax.random.split(key)
        params = model.init(k_init, hp)
        opt = make_optimizer(static, dynamic["lr"])
        opt_state = opt.init(params)
        n_train = data.x_train.shape[0]

        def loss_fn(p, x, y):
            logits = model.apply(p, x, hp)
            losses = activations.softmax_cross_entropy_with_integer_labels(logits, y)
            return jnp.mean(losses), logits

        def error(p):
            logits = model.apply(p, data.x_eval, hp)
            return jnp.mean(jnp.argmax(logits, -1) != data.y_eval)

        held_out = {
            name: (x, y)
            for name, x, y in (("test", data.x_test, data.y_test), ("val", data.x_val, data.y_val))
            if x is not None
        }

        def snapshot(extra, params, evaluated):
            # The parameters at the first evaluation at or below the target, for the held-out
            # errors "at target" (NaN compares False: a diverged lane never snapshots).
            snap, reached = extra
            first = ~reached & (evaluated <= static.target)
            return _tree_where(first, params, snap), reached | first

        def step(carry, t):
            params, opt_state, diverged, div_step = carry
            # Minibatch drawn on device; it depends on the seed only, so lanes that differ in
            # lr alone see identical batches (common random numbers). bits % n rather than
            # randint: the modulo bias (n / 2^32) is negligible and it compiles in half the time.
            bits = jax.random.bits(jax.random.fold_in(k_data, t), (batch,), jnp.uint32)
            idx = (bits % jnp.uint32(n_train)).astype(jnp.int32)
            x, y = data.x_train[idx], data.y_train[idx]
            (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y)
            err = jnp.mean(jnp.argmax(logits, -1) != y)
            updates, new_state = opt.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            ok = jnp.isfinite(loss) & (loss <= static.loss_bound) & _tree_finite(new_params)
            div_step = jnp.where(~diverged & ~ok, t, div_step)
            diverged = diverged | ~ok
            params = _tree_where(diverged, params, new_params)
            opt_state = _tree_where(diverged, opt_state, new_state)
            nan = jnp.float32(jnp.nan)
            out = {
                "loss": jnp.where(diverged, nan, loss),
                "minibatch_error": jnp.where(diverged, nan, err),
            }
            if probe is not None:
                out.update(probe(params, grads))
            return (params, opt_state, diverged, div_step), out

        def chunk(carry, c):
            inner, extra = carry[:4], carry[4:]
            inner, out = lax.scan(step, inner, c * every + jnp.arange(every, dtype=jnp.int32))
            evaluated = jnp.where(inner[2], jnp.nan, error(inner[0]))
            if on_chunk is not None:
                on_chunk(dynamic, evaluated)
            if extra:
                extra = snapshot(extra, inner[0], evaluated)
            return (*inner, *extra), (out, evaluated)

        # (params, opt_state, diverged, divergence step[, params at target, reached])
        carry: tuple[Any, ...] = (params, opt_state, jnp.array(False), jnp.array(-1, jnp.int32))
        if held_out:
            carry = (*carry, params, jnp.array(False))
        steps_trained = None
        if static.early_exit:
            carry, (per_step, evals), steps_trained = _until_target(chunk, carry, static)
            diags: dict[str, jax.Array] = {}
        elif not static.diagnostics:
            carry, (per_step, evals) = lax.scan(chunk, carry, jnp.arange(n_chunks, dtype=jnp.int32))
            diags = {}
        else:
            n_diag = min(static.diag_size, data.x_eval.shape[0])
            x_diag, y_diag = data.x_eval[:n_diag], data.y_eval[:n_diag]
            measure = diagnostics.make_measure(static, data.x_train.shape[1:], num_classes)

            def diag(p, diverged):
                out = measure(p, hp, x_diag, y_diag)
                return {k: jnp.where(diverged, jnp.nan, v) for k, v in out.items()}

            def block(carry, b):
                chunks = b * per_block + jnp.arange(per_block, dtype=jnp.int32)
                carry, out = lax.scan(chunk, carry, chunks)
                return carry, (out, diag(carry[0], carry[2]))

            n_blocks = n_chunks // per_block
            blocks = jnp.arange(n_blocks, dtype=jnp.int32)
            first = diag(params, jnp.array(False))
            carry, ((per_step, evals), diags) = lax.scan(block, carry, blocks)
            per_step = {k: v.reshape(n_chunks, *v.shape[2:]) for k, v in per_step.items()}
            evals = evals.reshape(n_chunks)
            diags = {f"diag_{k}": jnp.concatenate([first[k][None], v]) for k, v in diags.items()}
        metrics = {k: v.reshape(static.steps, *v.shape[2:]) for k, v in per_step.items()}
        metrics["eval_error"] = jnp.concatenate([error(params)[None], evals])
        metrics["diverged"], metrics["divergence_step"] = carry[2], carry[3]
        for name, (x, y) in held_out.items():
            final = _error_rate(model.apply, carry[0], hp, x, y, data.x_eval.shape[0])
            at_target = _error_rate(model.apply, carry[4], hp, x, y, data.x_eval.shape[0])
            metrics[f"{name}_error"] = jnp.where(carry[2], jnp.nan, final)
            metrics[f"{name}_error_at_target"] = jnp.where(carry[5], at_target, jnp.nan)
        if steps_trained is not None:
            metrics["steps_trained"] = steps_trained
        metrics.update(diags)
        return metrics

    return train


def _error_rate(apply: Callable[..., jax.Array], params: Any, hp: Any, x: Any, y: Any, batch: int):
    """Misclassified fraction of (x, y), in batches of at most ``batch`` examples so that a
    large split needs no more memory than the evaluation subset."""
    n = x.shape[0]
    batch = max(1, min(batch, n))
    q = n // batch * batch

    def wrong(xb, yb):
        return jnp.sum(jnp.argmax(apply(params, xb, hp), -1) != yb)

    xs, ys = x[:q].reshape(-1, batch, *x.shape[1:]), y[:q].reshape(-1, batch)
    total = jnp.sum(lax.map(lambda b: wrong(*b), (xs, ys)))
    if q < n:
        total = total + wrong(x[q:], y[q:])
    return total / n


def _until_target(
    chunk: Callable[..., Any], carry: Any, static: GroupStatic
) -> tuple[Any, Any, jax.Array]:
    """Chunks of ``eval_every`` steps until the evaluation error has stayed <= target for
    ``early_exit`` evaluations in a row, the lane diverged, or the budget is spent.

    Returns what ``lax.scan(chunk, ...)`` would, with NaN for the chunks never run, and the
    number of steps trained. A ``while_loop`` rather than a scan: run one after another, each
    configuration stops on its own; vmapped, the loop runs until every lane has stopped (the
    stopped lanes' state is carried unchanged).
    """
    n_chunks, every = static.steps // static.eval_every, static.eval_every
    _, shapes = jax.eval_shape(chunk, carry, jnp.int32(0))

    def empty(sd):
        fill = jnp.nan if jnp.issubdtype(sd.dtype, jnp.floating) else 0
        return jnp.full((n_chunks, *sd.shape), fill, sd.dtype)

    def body(state):
        c, carry, streak, bufs = state
        carry, res = chunk(carry, c)
        bufs = jax.tree.map(lambda b, v: b.at[c].set(v), bufs, res)
        streak = jnp.where(res[1] <= static.target, streak + 1, 0)  # NaN compares False
        return c + 1, carry, streak, bufs

    def cond(state):
        c, carry, streak, _ = state
        return (c < n_chunks) & (streak < static.early_exit) & ~carry[2]

    init = (jnp.int32(0), carry, jnp.int32(0), jax.tree.map(empty, shapes))
    c, carry, _, bufs = lax.while_loop(cond, body, init)
    return carry, bufs, c * every


def diag_steps(static: GroupStatic) -> np.ndarray:
    """The steps at which the ``diag_*`` metrics are measured: 0, diag_every, ..., steps
    (empty when diagnostics are off)."""
    return np.arange(static.num_diags) * static.diag_every


def eval_steps(static: GroupStatic) -> np.ndarray:
    """The steps at which ``eval_error`` is measured: 0, eval_every, ..., steps."""
    return np.arange(static.num_evals) * static.eval_every

"""The activations inside models: plain JAX (jit, grad, vmap, scan, checkpoint), equinox, nnx.

Each model is trained a few steps twice from the same initialisation on the same data: once
with our activation and once with jax.nn's. Training must lower the loss, and the two runs
must agree to float tolerance (the activations are drop-ins; only the backward rule differs).
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _utils import FAST_COMPILE, assert_trees_close

import activations as A

# Compile time is the whole cost of these tests: skip LLVM's expensive passes (see _utils).
jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)

SIZES = (8, 16, 16, 3)
STEPS = 25
RTOL = 1e-5  # float32 over STEPS steps of SGD: a few ulps per step, compounded


def _data(n=64, seed=0):
    """A fixed 3-class problem: labels from a random linear map of Gaussian inputs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SIZES[0])).astype(np.float32)
    labels = np.argmax(x @ rng.normal(size=(SIZES[0], SIZES[-1])), axis=1).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(labels)


def init_mlp(key, sizes=SIZES):
    """[(W, b), ...] with He-normal weights."""
    params = []
    keys = jax.random.split(key, len(sizes) - 1)
    for k, (m, n) in zip(keys, itertools.pairwise(sizes), strict=True):
        params.append((jax.random.normal(k, (m, n)) * jnp.sqrt(2.0 / m), jnp.zeros(n)))
    return params


def mlp(params, x, act, *, remat=False):
    """Hidden layers act(x W + b); ``remat`` wraps each hidden layer in jax.checkpoint."""

    def layer(h, w, b):
        return act(h @ w + b)

    if remat:
        layer = jax.checkpoint(layer)
    for w, b in params[:-1]:
        x = layer(x, w, b)
    w, b = params[-1]
    return x @ w + b


def _loss_fn(act, ours_loss, remat=False):
    ce = (
        A.softmax_cross_entropy_with_integer_labels
        if ours_loss
        else optax.softmax_cross_entropy_with_integer_labels
    )
    return lambda params, x, y: ce(mlp(params, x, act, remat=remat), y).mean()


def make_train(act, *, ours_loss=True, remat=False, steps=STEPS):
    """train(params, lr) -> (params, losses): the SGD loop as one lax.scan."""
    loss_fn = _loss_fn(act, ours_loss, remat)
    x, y = _data()

    def train(params, lr):
        tx = optax.sgd(lr)

        def step(carry, _):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
        return params, losses

    return train


def _assert_learns(losses):
    losses = np.asarray(losses)
    assert np.isfinite(losses).all(), losses
    assert losses[-1] < 0.8 * losses[0], f"loss did not decrease: {losses[0]} -> {losses[-1]}"


@pytest.mark.parametrize("name", ["relu", "tanh", "gelu"])
def test_scan_training_matches_jax_nn(name):
    """jit(scan(value_and_grad)) with our activation and fused loss == jax.nn + optax."""
    params = init_mlp(jax.random.key(0))
    both = lambda p, lr: (
        make_train(A.get(name))(p, lr),
        make_train(A.info(name).jax_nn, ours_loss=False)(p, lr),
    )
    ours, ref = jit(both)(params, 0.1)  # one compile for both runs
    _assert_learns(ours[1])
    assert_trees_close(ours, ref, rtol=RTOL, err_msg=name)


def test_vmap_over_seeds_and_learning_rates():
    """One compiled train, vmapped over (seed, lr): equals jax.nn's, row by row."""
    keys = jax.random.split(jax.random.key(1), 3)
    lrs = jnp.array([0.03, 0.1, 0.3])
    params = jax.vmap(init_mlp)(keys)

    def run(params, lrs):
        return (
            jax.vmap(make_train(A.relu))(params, lrs),
            jax.vmap(make_train(jax.nn.relu, ours_loss=False))(params, lrs),
        )

    ours, ref = jit(run)(params, lrs)
    for i in range(3):
        _assert_learns(ours[1][i])
    assert_trees_close(ours, ref, rtol=RTOL)


def test_checkpointed_layers_give_the_same_gradients():
    """jax.checkpoint around each layer recomputes the forward pass (and our custom_vjp fwd)
    in the backward pass: same gradients as without remat, and as jax.nn."""
    params = init_mlp(jax.random.key(2))
    x, y = _data()
    cases = [(A.gelu, False), (A.gelu, True), (jax.nn.gelu, True)]

    @jit
    def grads(params):
        return [jax.grad(_loss_fn(act, True, remat))(params, x, y) for act, remat in cases]

    # The remat really happened: the checkpoint shows up in the differentiated program.
    jaxpr = jax.make_jaxpr(jax.grad(_loss_fn(A.gelu, True, True)))(params, x, y)
    assert "checkpoint" in str(jaxpr) or "remat" in str(jaxpr)
    base, *others = grads(params)
    for (act, remat), g in zip(cases[1:], others, strict=True):
        assert_trees_close(g, base, rtol=RTOL, err_msg=f"{act.__module__} remat={remat}")


# --------------------------------------------------------------------------- PReLU, leaky ReLU


def _prelu_loss(params, slopes, x, y):
    h = x
    for (w, b), a in zip(params[:-1], slopes, strict=True):
        h = A.prelu(h @ w + b, a)
    w, b = params[-1]
    return A.softmax_cross_entropy_with_integer_labels(h @ w + b, y).mean()


def test_prelu_learns_its_slope():
    """Per-channel slopes (init 0.25) are trained with the weights and move; with the slopes
    frozen the model is exactly jax.nn.leaky_relu at 0.25."""
    params = init_mlp(jax.random.key(3))
    slopes = [A.prelu_init((n,)) for n in SIZES[1:-1]]
    x, y = _data()
    tx = optax.sgd(0.1)

    @functools.partial(jit, static_argnums=2)
    def train(params, slopes, learn_slopes):
        def step(carry, _):
            theta, opt_state = carry

            def loss_fn(theta):
                p, a = theta
                return _prelu_loss(p, a if learn_slopes else jax.lax.stop_gradient(a), x, y)

            loss, grads = jax.value_and_grad(loss_fn)(theta)
            updates, opt_state = tx.update(grads, opt_state)
            return (optax.apply_updates(theta, updates), opt_state), loss

        theta = (params, slopes)
        (theta, _), losses = jax.lax.scan(step, (theta, tx.init(theta)), None, length=STEPS)
        return theta, losses

    (_, a_learned), losses = train(params, slopes, True)
    _assert_learns(losses)
    moved = max(float(jnp.abs(a - 0.25).max()) for a in a_learned)
    assert moved > 1e-3, f"slopes did not move: max |a - 0.25| = {moved}"

    (p_fixed, a_fixed), losses_fixed = train(params, slopes, False)
    assert_trees_close(a_fixed, slopes, rtol=0.0, atol=0.0)
    leaky = lambda x: jax.nn.leaky_relu(x, 0.25)
    ref = jit(make_train(leaky, ours_loss=False))(params, 0.1)
    assert_trees_close((p_fixed, losses_fixed), ref, rtol=RTOL)


def test_leaky_relu_traced_slope_under_vmap():
    """The slope is a traced value vmapped over (the differentiable prelu path): each row equals
    jax.nn.leaky_relu at that slope; the middle row also equals our Python-float (mask) path."""
    params = init_mlp(jax.random.key(4))
    slopes = jnp.array([0.01, 0.1, 0.3])

    def train_with(leaky, ours_loss):
        return lambda slope: make_train(lambda h: leaky(h, slope), ours_loss=ours_loss)(params, 0.1)

    @jit
    def run(slopes):
        return (
            jax.vmap(train_with(A.leaky_relu, True))(slopes),
            jax.vmap(train_with(jax.nn.leaky_relu, False))(slopes),
            make_train(lambda h: A.leaky_relu(h, 0.1))(params, 0.1),
        )

    ours, ref, python_slope = run(slopes)
    for i in range(3):
        _assert_learns(ours[1][i])
    assert_trees_close(ours, ref, rtol=RTOL)
    assert_trees_close(jax.tree_util.tree_map(lambda a: a[1], ours), python_slope, rtol=RTOL)


def test_jitted_step_traces_once():
    """Guard against silent retracing: three calls of a jitted step, one trace."""
    traces = []
    loss_fn = _loss_fn(A.relu, True)
    x, y = _data()

    @jax.jit
    def step(params):
        traces.append(1)
        grads = jax.grad(loss_fn)(params, x, y)
        return jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)

    params = init_mlp(jax.random.key(5))
    for _ in range(3):
        params = step(params)
    assert len(traces) == 1


# --------------------------------------------------------------------------- equinox, flax nnx


def _eqx_train(act):
    import equinox as eqx

    model = eqx.nn.MLP(SIZES[0], SIZES[-1], width_size=16, depth=2, activation=act,
                       key=jax.random.key(6))  # fmt: skip
    x, y = _data()
    tx = optax.sgd(0.5)

    @eqx.filter_jit
    def step(model, opt_state):
        def loss_fn(model):
            return A.softmax_cross_entropy_with_integer_labels(jax.vmap(model)(x), y).mean()

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    opt_state = tx.init(eqx.filter(model, eqx.is_array))
    losses = []
    for _ in range(STEPS):
        model, opt_state, loss = step(model, opt_state)
        losses.append(loss)
    return eqx.filter(model, eqx.is_array), jnp.stack(losses)


def test_equinox_mlp():
    """eqx.nn.MLP(activation=activations.relu) under filter_jit / filter_value_and_grad."""
    ours, ref = _eqx_train(A.relu), _eqx_train(jax.nn.relu)
    _assert_learns(ours[1])
    assert_trees_close(ours, ref, rtol=RTOL)


def _nnx_train(act):
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.layers = nnx.List(
                [nnx.Linear(m, n, rngs=rngs) for m, n in itertools.pairwise(SIZES)]
            )

        def __call__(self, x):
            for layer in self.layers[:-1]:
                x = act(layer(x))
            return self.layers[-1](x)

    model = MLP(nnx.Rngs(7))
    optimizer = nnx.Optimizer(model, optax.sgd(0.5), wrt=nnx.Param)
    x, y = _data()

    @nnx.jit
    def step(model, optimizer):
        def loss_fn(model):
            return A.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    losses = jnp.stack([step(model, optimizer) for _ in range(STEPS)])
    return nnx.state(model, nnx.Param), losses


def test_flax_nnx_module():
    """nnx.Linear layers calling our gelu, trained with nnx.Optimizer and nnx.value_and_grad."""
    ours, ref = _nnx_train(A.gelu), _nnx_train(jax.nn.gelu)
    _assert_learns(ours[1])
    assert_trees_close(ours, ref, rtol=RTOL)

"""The same small-MLP sweep written the ways a user would write it without the harness.

Every baseline trains ``N`` configurations of one MLP (``layers[:-1]`` followed by the
activation, a linear head, mean softmax cross-entropy, plain SGD) that differ only in their
learning rate, and returns the loss of the last step (computed before that step's update, as
the harness's ``metrics["loss"][:, -1]``). All of them take the same inputs:

- ``layers``: ``[(w, b), ...]`` numpy arrays with a leading configuration axis,
  ``w: (N, fan_in, fan_out)``, ``b: (N, fan_out)`` (the JAX layout; PyTorch gets ``w.T``);
- ``x_train: (n, features)`` float32, ``y_train: (n,)`` int;
- ``lrs: (N,)``;
- ``batch_idx: (steps, batch)``: the minibatch indices of every step, shared by all
  configurations (common random numbers, as the harness draws them for one seed).

So every way trains the same thing from the same initial weights on the same minibatches, and
their final losses agree to float32 round-off (``tests/benchmarks`` checks ~1e-3).

- :func:`naive_jax_loop`: what a JAX tutorial shows: a jitted step, a Python loop over steps
  (the minibatch gathered on the host with numpy), configurations one after another.
- :func:`torch_loop`: what a PyTorch user writes: ``nn.Sequential``, ``torch.optim.SGD``,
  ``loss.backward()``, a loop of models and steps.
- :func:`torch_func_vmap`: PyTorch's vectorised form: ``torch.func.functional_call`` +
  ``vmap`` + ``grad_and_value`` over parameters stacked on a configuration axis.

PyTorch is optional (``pip install torch==2.13.0`` for the CPU build); the torch baselines
import it lazily and raise ``ImportError`` when it is missing.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

Layers = Sequence[tuple[np.ndarray, np.ndarray]]

__all__ = ["Layers", "naive_jax_loop", "torch_func_vmap", "torch_loop"]


def _check(layers: Layers, lrs: Any, batch_idx: Any) -> tuple[np.ndarray, np.ndarray, int]:
    lrs = np.asarray(lrs, np.float32).reshape(-1)
    batch_idx = np.asarray(batch_idx)
    if batch_idx.ndim != 2:
        raise ValueError(f"batch_idx: expected (steps, batch), got shape {batch_idx.shape}")
    for w, b in layers:
        if w.shape[0] != lrs.shape[0] or b.shape[0] != lrs.shape[0]:
            raise ValueError(
                f"layers: leading axis must be the {lrs.shape[0]} configurations, got "
                f"{w.shape} / {b.shape}"
            )
    return lrs, batch_idx, lrs.shape[0]


# --------------------------------------------------------------------------- JAX


@functools.cache
def _jax_step(activation: str):
    """One SGD step, jitted once per activation (cached so that timing excludes tracing)."""
    act = getattr(jax.nn, activation)

    def loss_fn(params, x, y):
        h = x
        for w, b in params[:-1]:
            h = act(h @ w + b)
        w, b = params[-1]
        logits = h @ w + b
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def step(params, x, y, lr):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), loss

    return step


def naive_jax_loop(
    layers: Layers,
    x_train: np.ndarray,
    y_train: np.ndarray,
    lrs: Any,
    batch_idx: Any,
    activation: str = "tanh",
) -> np.ndarray:
    """Configurations one after another; per configuration a Python loop over steps, each
    calling a jitted SGD step on a minibatch gathered on the host. Returns final losses (N,)."""
    lrs, batch_idx, n = _check(layers, lrs, batch_idx)
    step = _jax_step(activation)
    x_train, y_train = np.asarray(x_train, np.float32), np.asarray(y_train, np.int32)
    losses = np.empty(n, np.float32)
    for i in range(n):
        params = [(jnp.asarray(w[i]), jnp.asarray(b[i])) for w, b in layers]
        lr = float(lrs[i])
        loss = jnp.nan
        for idx in batch_idx:
            params, loss = step(params, x_train[idx], y_train[idx], lr)
        losses[i] = float(loss)
    return losses


# --------------------------------------------------------------------------- PyTorch


@contextlib.contextmanager
def _torch_threads(n: int | None):
    """Run with ``torch.set_num_threads(n)`` (None: leave PyTorch's default), then restore."""
    import torch

    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _torch_mlp(layers: Layers, i: int | None, activation: str):
    """nn.Sequential(Linear, act, ..., Linear) holding configuration i's weights (or zeros)."""
    import torch
    from torch import nn

    act = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}[activation]
    mods: list[nn.Module] = []
    linears: list[nn.Linear] = []
    for k, (w, _) in enumerate(layers):
        linears.append(nn.Linear(w.shape[1], w.shape[2]))
        mods.append(linears[-1])
        if k < len(layers) - 1:
            mods.append(act())
    model = nn.Sequential(*mods)
    if i is not None:
        with torch.no_grad():
            for lin, (w, b) in zip(linears, layers, strict=True):
                lin.weight.copy_(torch.tensor(np.asarray(w[i]).T))
                lin.bias.copy_(torch.tensor(np.asarray(b[i])))
    return model


def torch_loop(
    layers: Layers,
    x_train: np.ndarray,
    y_train: np.ndarray,
    lrs: Any,
    batch_idx: Any,
    activation: str = "tanh",
    threads: int | None = None,
) -> np.ndarray:
    """A loop of models and a loop of steps, the way a PyTorch user writes it. Final losses.

    ``threads``: ``torch.set_num_threads`` for the call (None: PyTorch's default).
    """
    with _torch_threads(threads):
        return _torch_loop(layers, x_train, y_train, lrs, batch_idx, activation)


def _torch_loop(layers, x_train, y_train, lrs, batch_idx, activation):
    import torch
    import torch.nn.functional as F

    lrs, batch_idx, n = _check(layers, lrs, batch_idx)
    x = torch.tensor(np.asarray(x_train, np.float32))  # a copy: the inputs may be read-only
    y = torch.tensor(np.asarray(y_train, np.int64))
    idx_all = torch.tensor(np.asarray(batch_idx, np.int64))
    losses = np.empty(n, np.float32)
    for i in range(n):
        model = _torch_mlp(layers, i, activation)
        opt = torch.optim.SGD(model.parameters(), lr=float(lrs[i]))
        loss = torch.tensor(float("nan"))
        for idx in idx_all:
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        losses[i] = loss.item()
    return losses


def torch_func_vmap(
    layers: Layers,
    x_train: np.ndarray,
    y_train: np.ndarray,
    lrs: Any,
    batch_idx: Any,
    activation: str = "tanh",
    threads: int | None = None,
) -> np.ndarray:
    """All configurations at once: ``vmap(grad_and_value(functional_call))`` over parameters
    stacked on a leading axis, SGD applied to the stacked tensors. Final losses (N,).

    ``threads``: ``torch.set_num_threads`` for the call (None: PyTorch's default).
    """
    with _torch_threads(threads):
        return _torch_func_vmap(layers, x_train, y_train, lrs, batch_idx, activation)


def _torch_func_vmap(layers, x_train, y_train, lrs, batch_idx, activation):
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, grad_and_value, vmap

    lrs, batch_idx, n = _check(layers, lrs, batch_idx)
    base = _torch_mlp(layers, None, activation)
    params = {}
    for k, (w, b) in enumerate(layers):
        params[f"{2 * k}.weight"] = torch.tensor(np.swapaxes(np.asarray(w), 1, 2))
        params[f"{2 * k}.bias"] = torch.tensor(np.asarray(b))

    def loss_fn(p, xb, yb):
        return F.cross_entropy(functional_call(base, p, (xb,)), yb)

    step = vmap(grad_and_value(loss_fn), in_dims=(0, None, None))
    lr = torch.tensor(lrs)
    x = torch.tensor(np.asarray(x_train, np.float32))
    y = torch.tensor(np.asarray(y_train, np.int64))
    loss = torch.full((n,), float("nan"))
    with torch.no_grad():
        for idx in torch.tensor(np.asarray(batch_idx, np.int64)):
            grads, loss = step(params, x[idx], y[idx])
            params = {
                k: p - lr.view(-1, *(1,) * (p.ndim - 1)) * grads[k] for k, p in params.items()
            }
    return loss.cpu().numpy().astype(np.float32)  # on the host, wherever torch ran

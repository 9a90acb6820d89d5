"""Higher-order derivatives of custom_vjp functions.

``jax.custom_vjp`` defines reverse mode only, so ``jax.jvp``, ``jax.jacfwd`` and
``jax.linearize`` applied directly to an activation raise JAX's
``TypeError: can't apply forward-mode autodiff (jvp) to a custom_vjp function.``
Everything built from reverse mode works: ``jax.grad``, ``jax.vjp``, ``jax.jacrev`` at any
order, and also ``jax.hessian`` (forward-over-reverse: the forward pass differentiates the
backward rule, which is ordinary jnp code). The two helpers below cover the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax


def hessian(fun: Callable[..., Any], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    """Hessian by reverse-over-reverse (``jacrev(jacrev(fun))``), valid for custom_vjp functions.

    >>> import activations as A
    >>> round(float(A.hessian(A.tanh)(0.5)), 4)  # tanh'' = -2 tanh sech^2
    -0.7269
    """
    return jax.jacrev(jax.jacrev(fun, argnums=argnums), argnums=argnums)


def jvp(
    fun: Callable[..., Any], primals: tuple[Any, ...], tangents: tuple[Any, ...]
) -> tuple[Any, Any]:
    """Forward-mode product J v for a function with custom_vjp pieces, via reverse mode.

    The VJP ``u -> u^T J`` is linear in ``u``; transposing it (``jax.linear_transpose``) gives
    ``v -> J v``. Same result as ``jax.jvp`` for functions that support it, at the cost of one
    extra backward pass. Returns ``(fun(*primals), J @ tangents)``.

    >>> import activations as A
    >>> y, t = A.jvp(A.tanh, (0.0,), (2.0,))
    >>> float(y), float(t)
    (0.0, 2.0)
    """
    out, vjp_fun = jax.vjp(fun, *primals)
    transposed = jax.linear_transpose(vjp_fun, out)
    (t_out,) = transposed(tuple(tangents))
    return out, t_out

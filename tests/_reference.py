"""Textbook formulas, written independently of the library, evaluated in float64.

They are the naive forms (no tail tricks), so compare against them only where float64 is
accurate: |x| <= ~30. Every registered activation must have an entry; a new activation
without one fails the battery loudly rather than escaping it.
"""

import math

import jax
import jax.numpy as jnp

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946


def _sig(x):
    return 1 / (1 + jnp.exp(-x))


def _hard_sigmoid(x):
    return jnp.where(x <= -3, 0.0, jnp.where(x >= 3, 1.0, x / 6 + 0.5))


def _softplus(x):
    return jnp.log1p(jnp.exp(x))


REFERENCE = {
    "identity": lambda x: x,
    "sigmoid": _sig,
    "tanh": lambda x: (jnp.exp(x) - jnp.exp(-x)) / (jnp.exp(x) + jnp.exp(-x)),
    "hard_tanh": lambda x: jnp.where(x > 1, 1.0, jnp.where(x < -1, -1.0, x)),
    "hard_sigmoid": _hard_sigmoid,
    "soft_sign": lambda x: x / (1 + jnp.abs(x)),
    "log_sigmoid": lambda x: jnp.log(_sig(x)),
    "relu": lambda x: jnp.where(x > 0, x, 0.0),
    "relu6": lambda x: jnp.where(x <= 0, 0.0, jnp.where(x >= 6, 6.0, x)),
    "leaky_relu": lambda x, negative_slope=0.01: jnp.where(x >= 0, x, negative_slope * x),
    "prelu": lambda x, negative_slope=0.25: jnp.where(x >= 0, x, negative_slope * x),
    "elu": lambda x, alpha=1.0: jnp.where(x > 0, x, alpha * (jnp.exp(x) - 1)),
    "celu": lambda x, alpha=1.0: jnp.where(x > 0, x, alpha * (jnp.exp(x / alpha) - 1)),
    "selu": lambda x: SELU_LAMBDA * jnp.where(x > 0, x, SELU_ALPHA * (jnp.exp(x) - 1)),
    # 0.5 (1 + tanh u) written as sigmoid(2u): the (1 + tanh) form cancels below x = -5 even in
    # float64, and the reference must be the accurate side of the comparison.
    "gelu": lambda x, approximate=True: (
        x * _sig(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))
        if approximate
        else 0.5 * x * jax.scipy.special.erfc(-x / math.sqrt(2))
    ),
    "silu": lambda x, beta=1.0: x * _sig(beta * x),
    "hard_silu": lambda x: x * _hard_sigmoid(x),
    "mish": lambda x: x * jnp.tanh(_softplus(x)),
    "softplus": lambda x, beta=1.0, threshold=None: (
        _softplus(beta * x) / beta
        if threshold is None
        else jnp.where(beta * x > threshold, x, _softplus(beta * x) / beta)
    ),
    "squareplus": lambda x, b=4.0: (x + jnp.sqrt(x * x + b)) / 2,
}

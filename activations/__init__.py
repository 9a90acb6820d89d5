"""Activation functions for JAX with explicit backward passes.

Every function is a drop-in for its ``jax.nn`` namesake (same name, signature and defaults)
whose derivative is written out with ``jax.custom_vjp``: the forward pass saves the smallest
residual that suffices, and the backward rule stays finite and accurate in the tails where the
textbook formula under- or overflows.

>>> import activations as A
>>> "relu" in A.names(), A.info("sigmoid").max_derivative
(True, 0.25)
"""

from . import theory as theory
from ._autodiff import hessian as hessian
from ._autodiff import jvp as jvp
from ._losses import sigmoid_binary_cross_entropy as sigmoid_binary_cross_entropy
from ._losses import softmax_cross_entropy as softmax_cross_entropy
from ._losses import (
    softmax_cross_entropy_with_integer_labels as softmax_cross_entropy_with_integer_labels,
)
from ._rectifiers import celu as celu
from ._rectifiers import elu as elu
from ._rectifiers import identity as identity
from ._rectifiers import leaky_relu as leaky_relu
from ._rectifiers import prelu as prelu
from ._rectifiers import prelu_init as prelu_init
from ._rectifiers import relu as relu
from ._rectifiers import relu6 as relu6
from ._rectifiers import selu as selu
from ._registry import ActivationInfo as ActivationInfo
from ._registry import get as get
from ._registry import info as info
from ._registry import names as names
from ._sigmoidal import hard_sigmoid as hard_sigmoid
from ._sigmoidal import hard_tanh as hard_tanh
from ._sigmoidal import log_sigmoid as log_sigmoid
from ._sigmoidal import sigmoid as sigmoid
from ._sigmoidal import soft_sign as soft_sign
from ._sigmoidal import tanh as tanh
from ._smooth import gelu as gelu
from ._smooth import hard_silu as hard_silu
from ._smooth import hard_swish as hard_swish
from ._smooth import mish as mish
from ._smooth import silu as silu
from ._smooth import softplus as softplus
from ._smooth import squareplus as squareplus
from ._smooth import swish as swish

__version__ = "0.1.0"

"""Doctest namespace: examples in docstrings and README.md may use ``jax``, ``jnp`` and ``np``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace.update(jax=jax, jnp=jnp, np=np)

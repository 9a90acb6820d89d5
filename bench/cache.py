"""The harness's disk caches: generated data sets and JAX's persistent compilation cache.

Both live under ``$XDG_CACHE_HOME/activations-bench`` (``~/.cache/activations-bench``), and
one switch, ``ACTIVATIONS_BENCH_NO_DISK_CACHE=1``, turns both off. A ``JAX_COMPILATION_CACHE_DIR``
already in the environment (or a cache directory a library caller configured) is respected.

The compilation cache keys a compiled program on its HLO, the JAX/XLA versions and the device,
so a second sweep that shares a group's program (another ``--out``, a rerun after editing only
the config's description, a test's subprocess) loads it instead of compiling again.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_OFF_ENV = "ACTIVATIONS_BENCH_NO_DISK_CACHE"


def cache_dir() -> Path | None:
    """The cache root, or None when ``ACTIVATIONS_BENCH_NO_DISK_CACHE`` is set (not "0")."""
    if os.environ.get(CACHE_OFF_ENV, "") not in ("", "0"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "activations-bench"


def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at ``<cache root>/jax`` (before the first
    compile); returns the directory in use, or None when the cache stays off."""
    import jax

    # jax.config's options are dynamic attributes, unknown to the type checker.
    configured_dir = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or configured_dir:
        configured = os.environ.get("JAX_COMPILATION_CACHE_DIR")
        return Path(configured or configured_dir)
    root = cache_dir()
    if root is None:
        return None
    path = root / "jax"
    jax.config.update("jax_compilation_cache_dir", str(path))
    # Cache every program: a sweep group compiles in 1-5 s on CPU, under JAX's 1 s default
    # threshold for some, and small entries are cheap.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path

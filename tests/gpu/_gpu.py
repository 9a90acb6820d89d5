"""The GPU check's tests (marker ``gpu``): the harness and the library on the accelerator.

Run by ``python -m bench gpu-check`` (``scripts/gpu-check.sh``) on a GPU machine, and by its
``--dry-run`` on a CPU (``GPU_CHECK_DRY_RUN=1``, the CPU split into 2 devices), so the tests
cannot rot between GPU sessions. A test that means nothing without a GPU calls
``require_gpu()``: it is skipped, with the reason, in the dry run only, and fails anywhere
else, so a GPU run that silently fell back to the CPU cannot pass. The default ``pytest`` run
deselects the marker (addopts).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jax
import pytest

# tests/_utils.py and tests/_reference.py, shared with the CPU batteries
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DRY_RUN_ENV = "GPU_CHECK_DRY_RUN"
TWO_DEVICES_HINT = "XLA_FLAGS=--xla_force_host_platform_device_count=2 (the GPU check sets it)"


def dry_run() -> bool:
    return os.environ.get(DRY_RUN_ENV, "") not in ("", "0")


def require_gpu(why: str) -> None:
    """Skip (dry run) or fail (otherwise) unless JAX's default backend is a GPU."""
    platform = jax.default_backend()
    if platform == "gpu":
        return
    if dry_run():
        pytest.skip(f"dry run on {platform}: {why}")
    pytest.fail(f"JAX's default backend is {platform!r}, not a GPU: {why}")


def two_devices() -> list[jax.Device]:
    """Two devices of one platform: the first two GPUs, or, on a one-GPU machine (and in the
    dry run), two CPU devices; padding and sharding do not depend on the platform."""
    for devices in (jax.devices(), jax.devices("cpu")):
        if len(devices) >= 2:
            return list(devices[:2])
    pytest.fail(f"sharding with padding needs 2 devices: set {TWO_DEVICES_HINT}")

"""The CLI splits the CPU into JAX devices (one per usable core unless told otherwise)."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import pytest

from bench import cli
from tests.bench._bench_util import TINY, bench_env, write_toml

PROBE = (
    "import sys, jax; from bench import cli; "
    "print(cli.configure_cpu_devices(None if sys.argv[1] == 'auto' else int(sys.argv[1]))); "
    "print(jax.local_device_count('cpu'))"
)


def _probe(arg: str, n_devices: int | None = None) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, arg],
        env=bench_env(n_devices),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    return out[0], int(out[1])


def test_default_is_one_device_per_usable_core():
    assert _probe("auto") == (str(cli.usable_cores()), cli.usable_cores())


def test_explicit_count():
    assert _probe("3") == ("3", 3)


def test_environment_choice_is_respected():
    # XLA_FLAGS already names a count: the default leaves it alone.
    assert _probe("auto", n_devices=4) == ("None", 4)


FLAGS = ("--quiet", "--no-report", "--cpu-devices", "2")


def test_sweep_records_the_devices(tmp_path):
    cfg = write_toml(tmp_path / "c.toml", {**TINY, "experiment": "devs", "lr": [0.3]})
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "sweep", str(cfg), "--out", str(tmp_path), *FLAGS],
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (meta,) = tmp_path.glob("devs/*/meta.json")
    assert len(json.loads(meta.read_text())["devices"]) == 2


def test_bad_counts_are_refused_in_process():
    jax.devices()  # JAX is running in this process
    with pytest.raises(ValueError, match="at least 1"):
        cli.configure_cpu_devices(0)
    wrong = jax.local_device_count("cpu") + 1
    with pytest.raises(ValueError, match="already started"):
        cli.configure_cpu_devices(wrong)
    assert cli.configure_cpu_devices(jax.local_device_count("cpu")) is None
    assert cli.configure_cpu_devices(None) is None  # a library caller's choice stands
    assert cli.main(["report", "x", "--cpu-devices", "0"]) == 2

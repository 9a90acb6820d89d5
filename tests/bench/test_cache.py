"""The persistent compilation cache: on under the cache root, off with the one switch."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Compile one program with the harness's cache settings; print the cache directory in use.
SCRIPT = """
import jax, jax.numpy as jnp
from bench import cache
path = cache.enable_compilation_cache()
jax.jit(lambda x: jnp.tanh(x) @ x.T + 1.5)(jnp.ones((8, 8))).block_until_ready()
print(path)
"""


def _run(tmp_path: Path, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    clean.pop("ACTIVATIONS_BENCH_NO_DISK_CACHE", None)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={**clean, "XDG_CACHE_HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_compiled_programs_are_cached_under_the_cache_root(tmp_path):
    assert _run(tmp_path) == str(tmp_path / "activations-bench" / "jax")
    entries = list((tmp_path / "activations-bench" / "jax").iterdir())
    assert entries, "nothing was written to the compilation cache"


def test_one_switch_turns_the_cache_off(tmp_path):
    assert _run(tmp_path, ACTIVATIONS_BENCH_NO_DISK_CACHE="1") == "None"
    assert not (tmp_path / "activations-bench").exists()


def test_a_cache_dir_chosen_in_the_environment_is_respected(tmp_path):
    chosen = tmp_path / "mine"
    assert _run(tmp_path, JAX_COMPILATION_CACHE_DIR=str(chosen)) == str(chosen)
    assert not (tmp_path / "activations-bench").exists()

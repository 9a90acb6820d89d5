"""Shared pieces of the harness tests: a tiny sweep and record comparison."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A sweep small enough to compile and run in seconds: synthetic data, 2-layer width-8 MLP.
TINY = {
    "experiment": "tiny",
    "dataset": "teacher-student",
    "data": {"n_train": 256, "n_test": 32, "input_dim": 8, "num_classes": 4},
    "model": "mlp",
    "activation": "tanh",
    "depth": 2,
    "width": 8,
    "batch_size": 16,
    "steps": 20,
    "eval_every": 5,
    "eval_size": 64,
    "target": 0.5,
    "lr": [0.3, 0.03],
    "seed": [0, 1, 2],
}


def toml_value(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v + '"'
    return repr(v)


def write_toml(path: Path, d: dict) -> Path:
    path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in d.items()))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_env(n_devices: int | None = None, cache_dir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if cache_dir is not None:  # persistent compilation cache shared by the subprocesses
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.pop("XLA_FLAGS", None)
    if n_devices:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={n_devices}"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def run_bench(
    args: list[str], n_devices: int | None = None, cache_dir: Path | None = None, **kw
) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        env=bench_env(n_devices, cache_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


MEASURED = ("final_train_error", "final_minibatch_loss", "min_train_error")


def assert_records_equal(a: list[dict], b: list[dict], rtol: float = 1e-4) -> None:
    """Same configurations with the same results (floats to tolerance)."""
    ka = {r["config_id"]: r for r in a}
    kb = {r["config_id"]: r for r in b}
    assert len(ka) == len(a) and len(kb) == len(b), "a config_id appears twice"
    assert ka.keys() == kb.keys()
    for cid, ra in ka.items():
        rb = kb[cid]
        assert ra.keys() == rb.keys()
        for k in ra:
            x, y = ra[k], rb[k]
            if k in MEASURED and x is not None and y is not None:
                assert math.isclose(x, y, rel_tol=rtol, abs_tol=1e-5), (cid, k, x, y)
            elif k != "git_commit":
                assert x == y, (cid, k, x, y)

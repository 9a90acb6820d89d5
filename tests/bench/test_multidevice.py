"""Sharding over devices and hosts: the same sweep gives the same records everywhere.

Each test starts fresh Python processes, since the device count is fixed when JAX starts:
4 CPU devices in one process (``--xla_force_host_platform_device_count=4``), and two processes
of 2 CPU devices each joined by ``jax.distributed`` on 127.0.0.1 (gloo collectives).
"""

from __future__ import annotations

import json

import pytest
from _bench_util import TINY, assert_records_equal, free_port, run_bench, write_toml

from bench import config, results, sweep

# 6 configurations: padded to 8 over 4 devices; 2 groups, one vmapped, one sequential per test.
SPEC = {
    **TINY,
    "experiment": "multi",
    "activation": ["tanh", "relu"],
    "lr": [0.3, 0.03],
    "seed": [0, 1, 2],
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same sweep unsharded, in this process (one device), per strategy."""
    out = tmp_path_factory.mktemp("ref")
    refs = {}
    for strategy in ("vmap", "sequential"):
        cfg = config.parse({**SPEC, "strategy": strategy})
        run_dir = sweep.run_sweep(cfg, out / strategy, progress=False, report=False)
        refs[strategy] = results.read_records(run_dir)
    return refs


def _run_dir(out, strategy):
    return sweep.run_dir_for(config.parse({**SPEC, "strategy": strategy}), out)


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_sharded_over_4_devices_equals_unsharded(tmp_path, reference, strategy):
    path = write_toml(tmp_path / "s.toml", {**SPEC, "strategy": strategy})
    p = run_bench(
        ["sweep", str(path), "--out", str(tmp_path), "--no-report", "--quiet"], n_devices=4
    )
    log, _ = p.communicate(timeout=300)
    assert p.returncode == 0, log
    run_dir = _run_dir(tmp_path, strategy)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert len(meta["devices"]) == 4
    assert_records_equal(results.read_records(run_dir), reference[strategy])


def test_two_processes_equal_one(tmp_path, reference):
    strategy = "vmap"
    path = write_toml(tmp_path / "s.toml", {**SPEC, "strategy": strategy})
    port = free_port()
    procs = [
        run_bench(
            [
                "sweep",
                str(path),
                "--out",
                str(tmp_path),
                "--no-report",
                "--quiet",
                "--coordinator",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],
            n_devices=2,
        )
        for i in range(2)
    ]
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=300)[0])
        finally:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), logs
    run_dir = _run_dir(tmp_path, strategy)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert len(meta["devices"]) == 4 and meta["process_count"] == 2
    # each configuration exactly once (checked inside), equal to the one-process run
    assert_records_equal(results.read_records(run_dir), reference[strategy])

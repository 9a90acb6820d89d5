"""The GPU check (``scripts/gpu-check.sh``, ``bench/gpu_check.py``) between GPU sessions.

The main test runs the whole job's dry run (tiny sizes, the CPU) in a subprocess and checks
what a GPU session would get back: two files in the output folder, a tarball holding every
step's log, the tests' junit report, the perf report and the reproduction, and that the unpack
command puts them where the README says. The others check the pieces the dry run cannot show:
the GPU budgets, the time limit stopping a whole process group, the unpack's replacing and
refusing, the size guard, and the model-FLOP count perf's CNN MFU rests on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from bench import gpu_check

REPO = Path(__file__).resolve().parents[1]
GPU_ONLY_TESTS = 3  # tests/gpu tests that call require_gpu (skipped in the dry run)


def _script(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(REPO / "scripts" / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_dry_run_returns_every_step_and_unpack_places_it(tmp_path):
    out = tmp_path / "out"
    p = _script("gpu-check.sh", "--dry-run", "--out", str(out), timeout=1500)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    # what the device tool returns: at most 8 plain files, here 2
    assert sorted(f.name for f in out.iterdir()) == ["gpu-check.log", "gpu-check.tar.gz"]
    tarball = out / "gpu-check.tar.gz"
    assert tarball.stat().st_size <= gpu_check.MAX_TARBALL
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("gpu-check/MANIFEST.json"))
        junit = ET.parse(tar.extractfile("gpu-check/tests/junit.xml")).getroot()
    assert manifest["mode"] == "dry-run"
    assert [s["name"] for s in manifest["steps"]] == list(gpu_check.STEP_NAMES)
    for s in manifest["steps"]:
        assert s["rc"] == 0 and not s["timed_out"], s
        assert f"gpu-check/{s['log']}" in names
    perf = [
        n for n in names if n.startswith("gpu-check/results/perf/") and n.endswith("/perf.json")
    ]
    assert len(perf) == 1
    assert perf[0].replace("perf.json", "REPORT.md") in names
    claim = "gpu-check/results/reproductions/relu-vs-tanh/gpu"
    assert {f"{claim}/REPORT.md", f"{claim}/summary.json", f"{claim}/meta.json"} <= names

    suite = junit.find("testsuite") if junit.tag == "testsuites" else junit
    assert int(suite.get("tests")) > GPU_ONLY_TESTS
    assert suite.get("failures") == suite.get("errors") == "0"
    skips = [c.find("skipped") for c in suite.iter("testcase") if c.find("skipped") is not None]
    assert len(skips) == GPU_ONLY_TESTS
    assert all("dry run on cpu" in s.get("message") for s in skips)

    results = tmp_path / "results"
    p = _script("gpu-unpack.sh", str(tarball), "--results", str(results), timeout=120)
    assert p.returncode == 2 and "dry-run" in p.stderr  # not a GPU measurement
    assert not results.exists()
    p = _script(
        "gpu-unpack.sh", str(tarball), "--results", str(results), "--allow-dry-run", timeout=120
    )
    assert p.returncode == 0, p.stderr
    dest = results / "perf" / "gpu-h200"
    assert (dest / "REPORT.md").is_file() and (dest / "perf.json").is_file()
    for f in ("MANIFEST.json", "logs/perf.log", "logs/repro.log", "tests/junit.xml"):
        assert (dest / "check" / f).is_file(), f
    assert (results / "reproductions" / "relu-vs-tanh" / "gpu" / "REPORT.md").is_file()
    placed = json.loads((dest / "check" / "MANIFEST.json").read_text())
    # True in CI; a checkout edited while the dry run ran says False, as it should
    assert placed["same_code_as_checkout"] is (placed["code_digest"] == gpu_check.code_digest())


def test_gpu_budgets_fit_eight_minutes_and_run_the_gpu_settings(tmp_path):
    steps = {s.name: s for s in gpu_check.steps(tmp_path, dry_run=False)}
    assert sum(s.timeout_s for s in steps.values()) <= 8 * 60
    assert set(steps) == set(gpu_check.STEP_NAMES)
    assert "--gpu" in steps["perf"].argv and "--tiny" not in steps["perf"].argv
    assert {"--full", "relu-vs-tanh"} <= set(steps["repro"].argv)
    assert "tests/gpu" in steps["tests"].argv
    for s in steps.values():  # nothing forces the CPU or declares a dry run on the GPU
        assert "JAX_PLATFORMS" not in s.env and "GPU_CHECK_DRY_RUN" not in s.env
    dry = {s.name: s for s in gpu_check.steps(tmp_path, dry_run=True)}
    assert all(s.env["JAX_PLATFORMS"] == "cpu" for s in dry.values())
    assert dry["tests"].env["GPU_CHECK_DRY_RUN"] == "1"
    assert "--tiny" in dry["perf"].argv and "--tiny" in dry["repro"].argv


def test_a_step_past_its_limit_is_stopped_with_its_children(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    # the step starts a grandchild and waits: stopping only the step would leave it running
    script = f"sleep 120 & echo $! > {pid_file}; wait"
    step = gpu_check.Step("slow", ("bash", "-c", script), timeout_s=2)
    t0 = time.monotonic()
    entry = gpu_check.run_step(step, tmp_path / "slow.log")
    assert entry["timed_out"] and entry["rc"] != 0
    assert time.monotonic() - t0 < 30
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _running(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(grandchild)
    assert "stopped after 2" in (tmp_path / "slow.log").read_text()


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan stays one until init reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _tarball(path: Path, mode: str, files: dict[str, str]) -> Path:
    root = path / "src" / gpu_check.ROOT
    manifest = {"mode": mode, "code_digest": "x", "git_commit": None, "steps": []}
    for name, text in {**files, "MANIFEST.json": json.dumps(manifest)}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    with tarfile.open(path / "t.tar.gz", "w:gz") as tar:
        tar.add(root, arcname=gpu_check.ROOT)
    return path / "t.tar.gz"


def test_unpack_replaces_what_the_tarball_holds_and_nothing_else(tmp_path):
    results = tmp_path / "results"
    stale = results / "reproductions" / "relu-vs-tanh" / "gpu" / "old.png"
    cpu_report = results / "reproductions" / "relu-vs-tanh" / "REPORT.md"
    other = results / "perf" / "cpu-some-machine" / "REPORT.md"
    for f in (stale, cpu_report, other):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("before")
    t = _tarball(
        tmp_path,
        "gpu",
        {
            "results/perf/gpu-nvidia-h200/REPORT.md": "perf",
            "results/reproductions/relu-vs-tanh/gpu/REPORT.md": "claim",
            "logs/perf.log": "log",
        },
    )
    placed = gpu_check.unpack(t, results)
    h200 = results / "perf" / "gpu-h200"
    assert (h200 / "REPORT.md").read_text() == "perf"
    assert (h200 / "check" / "logs" / "perf.log").read_text() == "log"
    assert (stale.parent / "REPORT.md").read_text() == "claim"
    assert not stale.exists()  # the claim's gpu folder is replaced as a whole
    assert cpu_report.read_text() == other.read_text() == "before"
    assert set(placed) == {h200, stale.parent, h200 / "check"}
    with pytest.raises(gpu_check.UnpackError, match="dry-run"):
        gpu_check.unpack(_tarball(tmp_path / "d", "dry-run", {}), results)


def test_a_tarball_over_the_file_limit_leaves_out_the_curves(tmp_path, monkeypatch):
    work, out = tmp_path / "work", tmp_path / "out"
    curves = work / "results" / "reproductions" / "c" / "gpu" / "runs" / "r" / "curves"
    curves.mkdir(parents=True)
    (curves / "g.npz").write_bytes(np.random.default_rng(0).bytes(200_000))  # incompressible
    (curves.parent / "records.jsonl").write_text("{}\n")
    out.mkdir()
    monkeypatch.setattr(gpu_check, "MAX_TARBALL", 100_000)
    info = gpu_check.pack(work, out, {"mode": "gpu"})
    assert info["left_out"] == "curves" and info["bytes"] <= 100_000
    with tarfile.open(out / gpu_check.TARBALL) as tar:
        names = tar.getnames()
    assert not any("/curves/" in n for n in names)
    assert any(n.endswith("/records.jsonl") for n in names)


def test_the_default_fashion_mnist_directory_is_the_loaders():
    from bench import data

    assert str(gpu_check.FASHION_MNIST_DIR) == data.FASHION_MNIST_DIR


def _setup(n_configs: int, steps: int, **model):
    """A sweep of ``n_configs`` lrs on 40-long inputs, 10 classes: shapes only, no data."""
    from bench import config, perf

    raw = {"dataset": "mnist1d", "batch_size": 4, "steps": steps, "eval_every": steps, **model}
    cfg = config.parse({**raw, "lr": [0.1 * (i + 1) for i in range(n_configs)]})
    ((static, configs),) = config.expand(cfg)
    x = np.zeros((1, 40), np.float32)
    return perf.SweepSetup(static, configs, None, 10, None, [], None, x, None)


def test_model_flops_counted_from_the_jaxpr_match_the_formulas():
    from bench import perf

    # MLP 40 -> 8 -> 8 -> 8 -> 10 (2 hidden layers in a scan): perf's own formula,
    # 6 P batch steps N with P = sum(in * out)
    mlp = _setup(3, 5, model="mlp", width=8, depth=3)
    p = 40 * 8 + 2 * 8 * 8 + 8 * 10
    assert perf.traced_model_flops(mlp) == 6 * p * 4 * 5 * 3
    # CNN (40, 1) -> conv 5 -> (40, 4) -> pool /2 -> conv 5 -> (20, 6) -> pool /2 -> 10 * 6
    # -> 10: per example, 2 FLOPs per multiply-add of each conv and of the head
    cnn = _setup(2, 3, model="cnn", channels=[4, 6])
    forward = 2 * 40 * 5 * 1 * 4 + 2 * 20 * 5 * 4 * 6 + 2 * 60 * 10
    assert perf.traced_model_flops(cnn) == 3 * forward * 4 * 3 * 2

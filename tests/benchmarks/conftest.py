"""Shared settings of the benchmark suite (pytest-benchmark).

Two modes, chosen by pytest-benchmark's own switch:

- CI mode, ``--benchmark-disable`` (in the project's addopts, so plain ``pytest`` is CI mode):
  every benchmark body runs once, untimed, at small sizes (activations at 2^12 elements only,
  sweeps of a few steps), so the whole suite stays well under two minutes on 2 cores.
- Timed mode, ``pytest tests/benchmarks --benchmark-enable``: activations at 2^12, 2^20 and
  2^24 elements, sweeps of 100 steps, and the side-by-side ratio tests.

``BENCH_SIZES=12,20`` (exponents of two) overrides the activation sizes in either mode.
"""

from __future__ import annotations

import os

import pytest

CI_SIZES = (12,)
TIMED_SIZES = (12, 20, 24)


def timing_enabled(config: pytest.Config) -> bool:
    """pytest-benchmark's rule: disabled by --benchmark-disable unless --benchmark-enable."""
    return not (config.getoption("benchmark_disable") and not config.getoption("benchmark_enable"))


def activation_sizes(config: pytest.Config) -> tuple[int, ...]:
    env = os.environ.get("BENCH_SIZES")
    if env:
        return tuple(int(e) for e in env.split(",") if e.strip())
    return TIMED_SIZES if timing_enabled(config) else CI_SIZES


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "log2_size" in metafunc.fixturenames:
        sizes = activation_sizes(metafunc.config)
        metafunc.parametrize("log2_size", sizes, ids=[f"2^{e}" for e in sizes])


@pytest.fixture(scope="session")
def timing(request: pytest.FixtureRequest) -> bool:
    """True when benchmarks are timed (not CI mode)."""
    return timing_enabled(request.config)

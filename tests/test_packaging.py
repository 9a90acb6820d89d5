"""The install split: `activations` runs on the core dependencies, `bench` names its extra.

The sdist/wheel build with warnings as errors and `twine check` run in `.ci/run`.
"""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
BENCH_EXTRA_MODULES = ("mnist1d", "scipy", "matplotlib", "tqdm")


def _dist_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_activations_imports_only_core_dependencies():
    # Block the harness's extras, use the library, then list the distributions whose modules
    # were imported: each must be a core dependency (or one of theirs).
    blocked = "; ".join(f"sys.modules[{m!r}] = None" for m in BENCH_EXTRA_MODULES)
    code = f"""
import sys, json, importlib.metadata as md
{blocked}
import jax, jax.numpy as jnp
import activations as A
for name in A.names():
    jax.grad(lambda x: A.get(name)(x).sum())(jnp.linspace(-2.0, 2.0, 5))
A.softmax_cross_entropy_with_integer_labels(jnp.zeros((2, 3)), jnp.array([0, 1]))
top = {{m.split(".")[0] for m, mod in sys.modules.items() if mod is not None}}
dists = md.packages_distributions()
print(json.dumps(sorted({{d for t in top for d in dists.get(t, [])}})))
"""
    out = _run(code)
    assert out.returncode == 0, out.stderr
    used = {d.lower().replace("_", "-") for d in json.loads(out.stdout.splitlines()[-1])}
    core = {_dist_name(r) for r in PYPROJECT["project"]["dependencies"]}
    extras = {_dist_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["bench"]}
    assert core <= {"jax", "jaxlib", "numpy", "optax"}
    assert not used & extras, used & extras
    assert {"jax", "jaxlib", "numpy"} <= used


def test_bench_without_its_extra_names_the_extra():
    out = _run("import sys; sys.modules['tqdm'] = None; sys.modules['scipy'] = None; import bench")
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert "ImportError" in last and "[bench]" in last and "scipy, tqdm" in last, last


def test_metadata_is_in_current_form():
    project = PYPROJECT["project"]
    assert isinstance(project["license"], str)  # an SPDX expression, not a deprecated table
    for pattern in project["license-files"]:
        assert list(ROOT.glob(pattern)), pattern
    requires = PYPROJECT["build-system"]["requires"]
    # license as a string and license-files need setuptools >= 77
    (setuptools,) = [r for r in requires if _dist_name(r) == "setuptools"]
    version = tuple(int(p) for p in re.search(r">=\s*([\d.]+)", setuptools)[1].split("."))
    assert version >= (77,)
    dev = {_dist_name(r) for r in project["optional-dependencies"]["dev"]}
    assert "activations-bench" in dev  # dev brings the bench extra with it

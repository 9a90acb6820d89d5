"""The run directory: atomic files, records, curves and metadata.

Layout of ``<out>/<experiment>/<run-id>/`` (read by ``bench.summary``)::

    config.json        resolved sweep config
    meta.json          status, versions, devices, git, per-group timings
    records.jsonl      one JSON object per finished configuration
    curves/<group>.npz config_ids (N,), eval_steps (E,), eval_error (N, E),
                       minibatch_error (N, S), loss (N, S); with diagnostics = true also
                       diag_steps (D,) and diag_<metric> (N, D, L) (bench.diagnostics)

Every file is written to a temporary file in the same directory and ``os.replace``d, so a
reader (or a run killed with SIGKILL at any moment) sees the old file or the new one, never a
partial one. A group is finished iff its curves file exists *and* its records are in
records.jsonl: curves are written first, then the whole records file is rewritten with the
group's records appended. A kill between the two leaves curves without records, and the group
is simply recomputed.
"""

from __future__ import annotations

import datetime
import io
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import numpy as np


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results and caches are not secrets
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, tuple):
        return list(v)
    raise TypeError(f"not JSON serializable: {type(v).__name__}")


def to_json(obj: Any, **kw: Any) -> str:
    return json.dumps(obj, default=_json_default, allow_nan=False, **kw)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, to_json(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "records.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_records(run_dir: Path, new: Iterable[dict[str, Any]]) -> None:
    """Add records by rewriting the whole file atomically (a replaced config_id is dropped),
    sorted by config_id: a run resumed after any interruption writes the same file as one that
    ran straight through."""
    new = list(new)
    ids = {r["config_id"] for r in new}
    kept = [r for r in read_records(run_dir) if r["config_id"] not in ids]
    lines = [to_json(r, sort_keys=True) for r in sorted(kept + new, key=lambda r: r["config_id"])]
    atomic_write_text(run_dir / "records.jsonl", "".join(line + "\n" for line in lines))


def curves_path(run_dir: Path, group: str) -> Path:
    return run_dir / "curves" / f"{group}.npz"


def write_curves(run_dir: Path, group: str, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **cast(dict[str, Any], arrays))  # all keyword: none is allow_pickle
    atomic_write_bytes(curves_path(run_dir, group), buf.getvalue())


def finished_groups(run_dir: Path) -> set[str]:
    """Groups with both their curves file and their records present."""
    with_records = {r["group"] for r in read_records(run_dir)}
    return {g for g in with_records if curves_path(run_dir, g).exists()}


def clean_float(v: float) -> float | None:
    """JSON has no NaN/inf: a non-finite measurement is recorded as null."""
    v = float(v)
    return v if math.isfinite(v) else None


# Where an untracked (not ignored) file changes what a run executes.
# What produces a result: the code and its declared dependencies (results/, README, tests do
# not; a reproduction rewrites its own tracked results while it runs).
GIT_CODE_DIRS = ("activations", "bench", "pyproject.toml")


def git_info(
    cwd: Path | None = None, config: str | os.PathLike | None = None
) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the repository holding this package; (None, None) outside git.

    Dirty: under ``GIT_CODE_DIRS`` or at ``config`` (the config file of the run, when it lies
    inside the repository; one outside it is saved with the results instead), a tracked file
    differs from HEAD or a file lies that git neither tracks nor ignores.
    """
    cwd = cwd or Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None, None
    top = git("rev-parse", "--show-toplevel")
    paths = [f":(top){d}" for d in GIT_CODE_DIRS]
    if config is not None and top:
        path, root = Path(config).resolve(), Path(top).resolve()
        if path.is_relative_to(root):
            paths.append(f":(top){path.relative_to(root).as_posix()}")
    status = git("status", "--porcelain", "--untracked-files=no", "--", *paths)
    untracked = git("ls-files", "--others", "--exclude-standard", "--", *paths)
    if status is None or untracked is None:
        return commit, None
    return commit, bool(status or untracked)


def environment() -> dict[str, Any]:
    """Versions, devices and git state for meta.json."""
    import jax

    commit, dirty = git_info()
    devices = jax.devices()
    return {
        "jax_version": jax.__version__,
        "devices": [str(d) for d in devices],
        "platform": devices[0].platform,
        "process_count": jax.process_count(),
        "git_commit": commit,
        "git_dirty": dirty,
    }


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")

"""Harness that trains many activation/config combinations and measures steps to a target error."""

import importlib.util as _util

# The harness's own dependencies come with the `bench` extra (the activation library needs only
# JAX): say so at import rather than fail later inside a sweep.
_missing = [m for m in ("mnist1d", "scipy", "matplotlib", "tqdm") if _util.find_spec(m) is None]
if _missing:
    raise ImportError(
        f"bench needs the [bench] extra (missing: {', '.join(_missing)}); install it with "
        "pip install 'activations-bench[bench]' (or '.[bench]' from a checkout)"
    )

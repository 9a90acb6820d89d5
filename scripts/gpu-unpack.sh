#!/usr/bin/env bash
# Place the tarball a GPU check returned: results/perf/gpu-h200/ (perf report, and check/ with
# the manifest, the logs and the tests' junit.xml) and results/reproductions/<claim>/gpu/.
#   bash scripts/gpu-unpack.sh PATH/gpu-check.tar.gz [--results DIR] [--allow-dry-run]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH}
exec "${PYTHON:-python3}" -m bench.gpu_check unpack "$@"

#!/usr/bin/env bash
# The GPU check: the GPU tests, `python -m bench perf --gpu` and the faithful relu-vs-tanh
# reproduction, each time-boxed (470 s in all), packed into $OUT/gpu-check.tar.gz with a
# summary in $OUT/gpu-check.log (bench/gpu_check.py says what each step does).
#
# 1. Here, once per checkout (no GPU needed): bash scripts/gpu-prepare.sh
#    (mnist1d's wheel into .whl/, Fashion-MNIST's IDX files into .data/fashion-mnist/, both
#    ignored through .git/info/exclude and carried to the GPU machine).
# 2. The device tool's call, to paste as is:
#      run(command="bash scripts/gpu-check.sh", carry=[".whl", ".data"], timeout_s=560)
#    A second try of one step: command="bash scripts/gpu-check.sh --only tests" (or perf, repro).
# 3. Here, with the tarball the reply names (under its files_at):
#      bash scripts/gpu-unpack.sh PATH/gpu-check.tar.gz
#
# Dry run on a CPU (CI runs it: tests/test_gpu_check.py): bash scripts/gpu-check.sh --dry-run --out DIR
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
if [ -d "$here/.whl" ] && ! "$py" -c "import mnist1d" 2>/dev/null; then
  # the GPU machine has no mnist1d (perf's data) and no network: install the carried wheel
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gpu-check-site "$here"/.whl/*.whl
  export PYTHONPATH=/tmp/gpu-check-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH}
exec "$py" -m bench.gpu_check run "$@"

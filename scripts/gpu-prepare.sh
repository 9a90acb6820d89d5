#!/usr/bin/env bash
# Before a GPU session, here: what the GPU machine lacks, in ignored folders `carry` takes along.
# - .whl/: mnist1d's wheel (pure Python; perf's data set; the machine has no network);
# - .data/fashion-mnist/: Fashion-MNIST's IDX files for the relu-vs-tanh --full reproduction,
#   copied from $FASHION_MNIST_SRC (default /usr/share/datasets/fashion-mnist, which
#   `apt-get update && apt-get install dataset-fashion-mnist` fills; about 30 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
mkdir -p .git/info .whl .data/fashion-mnist
for d in /.whl/ /.data/; do
  grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >> .git/info/exclude
done
version=$("$py" -c 'import importlib.metadata as m; print(m.version("mnist1d"))')
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 -d .whl "mnist1d==$version"
src=${FASHION_MNIST_SRC:-/usr/share/datasets/fashion-mnist}
if [ ! -d "$src" ]; then
  echo "no $src: apt-get update && apt-get install dataset-fashion-mnist, or set FASHION_MNIST_SRC" >&2
  exit 1
fi
cp "$src"/*-ubyte* .data/fashion-mnist/
PYTHONPATH=$PWD "$py" -c "from bench import data; data.validate('fashion-mnist', data_dir='.data/fashion-mnist')"
du -sh .whl .data

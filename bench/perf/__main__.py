"""``python -m bench.perf``: the same as ``python -m bench perf``."""

import sys

from bench import cli

if __name__ == "__main__":
    raise SystemExit(cli.main(["perf", *sys.argv[1:]]))

"""`make bench`: every benchmark in tests/bench/, one after another (not collected by pytest)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench import bench_build  # noqa: E402


def main() -> None:
    bench_build.main()
    for name in ("bench_send",):
        try:
            module = __import__(f"tests.bench.{name}", fromlist=["main"])
        except ModuleNotFoundError:
            continue
        print()
        module.main()


if __name__ == "__main__":
    main()

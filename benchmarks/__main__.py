"""``python -m benchmarks --size full``: print every figure and whether its target is met."""

from __future__ import annotations

import argparse

from benchmarks.fleet import run_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=["smoke", "full"], default="full")
    args = parser.parse_args()
    figures = run_all(args.size)
    for figure in figures:
        print(figure.row())
    missed = [f.name for f in figures if not f.met]
    print(
        f"{len(figures) - len(missed)} of {len(figures)} targets met"
        + (f"; missed: {missed}" if missed else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

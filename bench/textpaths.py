"""bench/textpaths — time of each text path of ours on adversarial inputs of 10 KB, 100 KB and 1 MB.

Every step that reads mail bytes, LLM answers or server responses is fed inputs of several shapes built to
make a backtracking regex or a naive loop super-linear (long runs without the character a pattern waits
for, repeated prefixes of a pattern, nesting, folding). For each (path, shape) the CPU time at 10 KB,
100 KB and 1 MB is printed with the ratios 100K/10K and 1M/100K: linear growth gives about 10 each,
quadratic about 100. A path whose 10 KB → 100 KB ratio is over 40 is not run at 1 MB (it would take
minutes) and is flagged.

Run from the repository root:  .venv/bin/python bench/textpaths.py [--only SUBSTRING] [--max 1000000]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/textpaths.py`: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.textshapes import PATHS, Shape

SIZES = (10_000, 100_000, 1_000_000)
FLAG_RATIO = 40.0


def cpu(fn: Callable[[Any], object], arg: Any, *, repeat: int) -> float:
    """The least CPU time of ``repeat`` runs of ``fn(arg)``."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn(arg)
        best = min(best, time.process_time() - started)
    return best


def measure(path: str, fn: Callable[[Any], object], shape: Shape, sizes: tuple[int, ...]) -> list[float | None]:
    times: list[float | None] = []
    for size in sizes:
        if len(times) >= 2 and times[-1] is not None and times[-2] and times[-1] / max(times[-2], 1e-4) > FLAG_RATIO:
            times.append(None)  # super-linear: the next size would take minutes
            continue
        arg = shape.build(size)
        times.append(cpu(fn, arg, repeat=3 if size <= 100_000 else 1))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the paths whose name contains this")
    parser.add_argument("--max", type=int, default=SIZES[-1], help="largest input size (bytes)")
    args = parser.parse_args()
    sizes = tuple(s for s in SIZES if s <= args.max)
    print(f"{'path':<22} {'shape':<28} " + " ".join(f"{s // 1000:>7}K" for s in sizes) + "   ratios")
    worst = 0.0
    flagged = []
    for path, fn, shapes in PATHS:
        if args.only not in path:
            continue
        for shape in shapes:
            times = measure(path, fn, shape, sizes)
            cells = " ".join(f"{t * 1000:>7.1f}ms" if t is not None else "   skipped" for t in times)
            ratios = []
            for a, b in itertools.pairwise(times):
                if a is not None and b is not None:
                    ratio = b / max(a, 1e-4)
                    ratios.append(f"{ratio:5.1f}")
                    if a >= 0.002:  # below 2 ms the ratio is noise
                        worst = max(worst, ratio)
                        if ratio > FLAG_RATIO:
                            flagged.append(f"{path}/{shape.name}")
            print(f"{path:<22} {shape.name:<28} {cells}   {' '.join(ratios)}", flush=True)
    print(f"\nworst ratio per 10× input (paths over 2 ms): {worst:.1f}  (linear ≈ 10, quadratic ≈ 100)")
    if flagged:
        print("super-linear:", ", ".join(flagged))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

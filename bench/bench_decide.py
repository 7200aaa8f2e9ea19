"""Decision engine throughput on one core: prints figures, asserts nothing.

    .venv/bin/python bench/bench_decide.py [--scenarios DIR] [--repeat N] [--seconds S]

Parses the public scenarios once, then times ``decide()`` over all of them in rounds (time.perf_counter),
printing the best and median decisions per second against the target. ``parse_snapshot()`` (JSON Schema
validation included) is timed separately, since a snapshot is parsed once per decision in production but its cost
is not the engine's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "build" / "collections"))

from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.decide import decide  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import parse_snapshot  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import load_yaml  # noqa: E402

TARGET_PER_SECOND = 20_000


def rounds(work: Callable[[], int], repeat: int, seconds: float) -> list[float]:
    """Operations per second of ``work`` (which returns how many it did) over ``repeat`` rounds of ~``seconds``."""
    calls = 1
    while True:  # calibrate: enough calls per round to last about `seconds`
        started = time.perf_counter()
        done = sum(work() for _ in range(calls))
        elapsed = time.perf_counter() - started
        if elapsed >= seconds / 4:
            calls = max(1, int(calls * seconds / elapsed))
            break
        calls *= 2
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = sum(work() for _ in range(calls))
        rates.append(done / (time.perf_counter() - started))
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", type=Path, default=ROOT.parent / "shared" / "scenarios" / "public")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="duration of one round")
    args = parser.parse_args()

    files = sorted(args.scenarios.glob("*.yml"))
    if not files:
        print(f"no scenarios in {args.scenarios}", file=sys.stderr)
        return 2
    documents = [load_yaml(path.read_text(encoding="utf-8"), str(path)) for path in files]
    snapshots = [parse_snapshot(doc, str(path)) for doc, path in zip(documents, files, strict=True)]

    def decide_all() -> int:
        for snap in snapshots:
            decide(snap)
        return len(snapshots)

    def parse_all() -> int:
        for doc, path in zip(documents, files, strict=True):
            parse_snapshot(doc, str(path))
        return len(documents)

    decided = rounds(decide_all, args.repeat, args.seconds)
    parsed = rounds(parse_all, max(3, args.repeat // 2), args.seconds)
    best, median = max(decided), statistics.median(decided)
    print(f"decide(): {len(snapshots)} public scenarios, {args.repeat} rounds of ~{args.seconds}s, one core")
    print(f"  best   {best:>10,.0f} decisions/s  ({1e6 / best:.1f} us per decision)")
    print(f"  median {median:>10,.0f} decisions/s  ({1e6 / median:.1f} us per decision)")
    verdict = "meets" if median >= TARGET_PER_SECOND else "MISSES"
    print(f"  target {TARGET_PER_SECOND:>10,} decisions/s  -> median {verdict} the target")
    print("parse_snapshot() (JSON Schema validation, defaults, typed snapshot), measured separately:")
    print(f"  best   {max(parsed):>10,.0f} snapshots/s  ({1e6 / max(parsed):.0f} us per snapshot)")
    print(
        f"  median {statistics.median(parsed):>10,.0f} snapshots/s  ({1e6 / statistics.median(parsed):.0f} us per "
        "snapshot)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Decision engine throughput on one core: prints figures, asserts nothing.

    .venv/bin/python bench/bench_decide.py [--scenarios DIR] [--repeat N] [--seconds S] [--against REV]

Parses the public scenarios once, then times ``decide()`` over all of them in rounds, printing the best and median
decisions per second against the target. Time is this process's CPU time (``time.process_time``): the engine is
single-threaded and CPU-bound, and on a busy machine wall time would count the other processes' turns too.
``parse_snapshot()`` (JSON Schema validation included) is timed separately, since a snapshot is parsed once per
decision in production but its cost is not the engine's.

``--against REV`` measures this code beside the engine of git revision REV in the same run: each side runs in a
process of its own, alternately, on the scenarios both can parse (an older engine refuses newer policy keys), and
the ratio of their medians is printed. Alternating keeps a busy machine's noise on both sides alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The code under test: the built collection, or (for --against) a revision's, named by the parent process.
sys.path.insert(0, os.environ.get("BENCH_DECIDE_CODE") or str(ROOT / "build" / "collections"))

from ansible_collections.zerotouch.selfheal.plugins.module_utils._engine.decide import decide  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._model.snapshot import parse_snapshot  # noqa: E402
from ansible_collections.zerotouch.selfheal.plugins.module_utils._schema import load_yaml  # noqa: E402

TARGET_PER_SECOND = 20_000


def rounds(work: Callable[[], int], repeat: int, seconds: float) -> list[float]:
    """Operations per second of ``work`` (which returns how many it did) over ``repeat`` rounds of ~``seconds``."""
    calls = 1
    while True:  # calibrate: enough calls per round to last about `seconds`
        started = time.process_time()
        done = sum(work() for _ in range(calls))
        elapsed = time.process_time() - started
        if elapsed >= seconds / 4:
            calls = max(1, int(calls * seconds / elapsed))
            break
        calls *= 2
    rates = []
    for _ in range(repeat):
        started = time.process_time()
        done = sum(work() for _ in range(calls))
        rates.append(done / (time.process_time() - started))
    return rates


def parseable(files: list[Path]) -> list[tuple[Path, Any]]:
    """The scenarios this code parses, with their snapshots."""
    found = []
    for path in files:
        try:
            found.append((path, parse_snapshot(load_yaml(path.read_text(encoding="utf-8"), str(path)), str(path))))
        except Exception:  # noqa: BLE001 - a scenario an older engine refuses is left out of the comparison
            continue
    return found


def checkout(rev: str, into: Path) -> Path:
    """The collection's plugins/ of git revision ``rev``, importable as ansible_collections.zerotouch.selfheal."""
    tree = into / "ansible_collections" / "zerotouch" / "selfheal"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "plugins"], check=True, capture_output=True)
    tar_path = into / "plugins.tar"
    tar_path.write_bytes(archive.stdout)
    with tarfile.open(tar_path) as tar:
        tar.extractall(tree, filter="data")
    return into


def side(code: str, files: list[Path], repeat: int, seconds: float) -> dict[str, Any]:
    """One measurement of one side, in a fresh process: its median decisions/s on ``files``."""
    env = {**os.environ, "BENCH_DECIDE_CODE": code}
    command = [sys.executable, __file__, "--measure", "--repeat", str(repeat), "--seconds", str(seconds)]
    done = subprocess.run([*command, *map(str, files)], check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def against(rev: str, files: list[Path], pairs: int, seconds: float) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        old = str(checkout(rev, Path(tmp)))
        new = str(ROOT / "build" / "collections")
        common = sorted(set(side(old, files, 1, 0.05)["files"]) & set(side(new, files, 1, 0.05)["files"]))
        chosen = [Path(f) for f in common]
        rates: dict[str, list[float]] = {"this code": [], rev: []}
        for _ in range(pairs):
            rates["this code"].append(side(new, chosen, 3, seconds)["median"])
            rates[rev].append(side(old, chosen, 3, seconds)["median"])
    print(f"decide() on the {len(chosen)} public scenarios both engines parse, {pairs} alternating pairs of runs")
    for name, values in rates.items():
        print(
            f"  {name:>12}  median {statistics.median(values):>10,.0f} decisions/s  (runs {min(values):,.0f}"
            f"-{max(values):,.0f})"
        )
    ratio = statistics.median(rates["this code"]) / statistics.median(rates[rev])
    print(f"  ratio this code / {rev}: {ratio:.2f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", type=Path, default=ROOT.parent / "shared" / "scenarios" / "public")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="duration of one round")
    parser.add_argument("--against", metavar="REV", help="also measure the engine of this git revision, alternately")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # one side of --against
    parser.add_argument("files", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:
        parsed = parseable(args.files)

        def decide_these() -> int:
            for _, snap in parsed:
                decide(snap)
            return len(parsed)

        median = statistics.median(rounds(decide_these, args.repeat, args.seconds)) if parsed else 0.0
        print(json.dumps({"median": median, "files": [str(path) for path, _ in parsed]}))
        return 0
    if args.against:
        return against(args.against, sorted(args.scenarios.glob("*.yml")), max(1, args.repeat), args.seconds)

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

"""_loop/runs: which processes a journaled run of an action still has, and how they are named and stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import runs
from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop.runs import Proc

PLAYBOOK = ("/venv/bin/python3", "/venv/bin/ansible-playbook", "remediate.yml")
RUN = {"host": "h", "boot": "b", "pid": 100, "start": 5000, "session": 100}
OWN = 7  # the loop's own session

TABLE = [
    Proc(1, 0, 1, 1),
    Proc(7, 1, 7, 10, ("ansible-rulebook",)),
    Proc(100, 1, 100, 5000, PLAYBOOK),  # reparented to init when the loop died
    Proc(101, 100, 100, 5010, ("ansible-playbook worker",)),
    Proc(102, 101, 100, 5020, ("/bin/sh", "-c", "python module")),
    Proc(150, 1, 100, 5030, ("orphan of the session",)),
    Proc(200, 1, 200, 6000, ("someone else",)),
    Proc(201, 7, 7, 6100, ("the loop's own child",)),
]


@pytest.mark.parametrize(
    ("run", "table", "expected"),
    [
        (RUN, TABLE, [100, 101, 102, 150]),
        ({**RUN, "session": 99}, TABLE, [100, 101, 102]),  # not a session leader: it and its descendants
        ({**RUN, "start": 4000}, TABLE, []),  # pid 100 is another process now: the run is gone
        (RUN, [p for p in TABLE if p.pid != 100], [101, 102, 150]),  # the playbook died, its session lives on
        ({**RUN, "pid": 7, "start": 10, "session": 7}, TABLE, []),  # never the loop's own session
        ({**RUN, "pid": 300}, TABLE, []),  # nothing left
    ],
    ids=["session", "not-a-leader", "pid-reused", "leader-gone", "own-session", "gone"],
)
def test_what_is_stopped_of_a_run(run: dict[str, object], table: list[Proc], expected: list[int]) -> None:
    assert runs.to_stop(run, table, OWN) == expected


def test_a_stat_line_is_read_after_the_command_name() -> None:
    line = "4242 (a (weird) name) S 17 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 0 0"
    assert runs.parse_stat(4242, line, PLAYBOOK) == Proc(4242, 17, 4242, 987654, PLAYBOOK, "S")
    assert runs.is_playbook(runs.parse_stat(4242, line, PLAYBOOK))
    assert not runs.is_playbook(Proc(1, 0, 1, 1, ("ansible-rulebook", "--vars", "ansible-playbook")))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_playbook_in_its_own_session_is_named_by_its_module_and_stopped_with_what_it_started(
    tmp_path: Path,
) -> None:
    # A stand-in ansible-playbook (its own session, as ansible-runner starts it) that runs a "module", which names
    # the run it is part of, and a child that would outlive it.
    fake = tmp_path / "ansible-playbook"
    fake.write_text(
        "import json, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "probe = 'import json, sys; from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import runs;"
        " print(json.dumps(runs.this_run()))'\n"
        "named = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True).stdout.strip()\n"
        "print(named, flush=True)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(fake)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        import json

        assert proc.stdout is not None
        run = json.loads(proc.stdout.readline())
        child = int(proc.stdout.readline())
        assert run["pid"] == proc.pid and run["session"] == proc.pid and run["boot"] == runs.boot_id()
        assert run["start"] == runs.read(proc.pid).start  # type: ignore[union-attr]
        assert runs.this_run() is None, "the test itself runs under no playbook"
        killed = runs.stop(run)
        assert sorted(killed) == sorted([proc.pid, child])
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while (left := runs.read(child)) is not None and left.state not in ("Z", "X"):
            assert time.monotonic() < deadline, "the playbook's child was not killed"
            time.sleep(0.05)
        assert runs.stop(run) == [], "stopped once, nothing is left"
        assert runs.stop({**run, "boot": "another-boot"}) == []
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="Linux /proc only")
def test_a_module_in_a_forked_worker_names_the_playbook_not_the_worker(tmp_path: Path) -> None:
    """ansible-playbook forks a worker per task, an ansible-playbook process in a session of its own that ends with
    the task: the run named is the playbook above it, which lives on (and whose end frees the loop's place)."""
    fake = tmp_path / "ansible-playbook"
    fake.write_text(
        "import json, subprocess, sys, time\n"
        "if sys.argv[1:] == ['worker']:\n"
        "    probe = 'import json; from ansible_collections.zerotouch.selfheal.plugins.module_utils._loop import runs;"
        " print(json.dumps(runs.this_run()))'\n"
        "    print(subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True).stdout.strip())\n"
        "    sys.exit(0)\n"
        "worker = subprocess.run([sys.executable, sys.argv[0], 'worker'], capture_output=True, text=True,"
        " start_new_session=True)\n"
        "print(worker.stdout.strip(), flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(fake)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        import json

        assert proc.stdout is not None
        run = json.loads(proc.stdout.readline())
        assert (run["pid"], run["session"]) == (proc.pid, proc.pid)
    finally:
        proc.kill()
        proc.wait()

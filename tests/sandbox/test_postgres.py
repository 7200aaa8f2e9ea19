"""The sandbox's PostgreSQL: reachable with the DSN and the password file from the state file, and gone (every
one of its processes) when the sandbox stops, also when the supervisor is killed outright."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from sandbox import client, procs

ROOT = Path(__file__).resolve().parents[2]


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, dict[str, Any]]]:
    proc = procs.spawn([sys.executable, "-m", "sandbox", "up", "--run-dir", str(tmp_path)], tmp_path / "sup.log", ROOT)
    deadline = time.monotonic() + 90
    state: dict[str, Any] = {}
    while not state and time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the sandbox did not start:\n{(tmp_path / 'sup.log').read_text()[-3000:]}")
        state = client.load_state(tmp_path, missing_ok=True)
        time.sleep(0.1)
    assert state, "the sandbox did not start within 90s"
    try:
        yield proc, state
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(state["postgres_dir"], ignore_errors=True)


def _connect_and_list(state: dict[str, Any]) -> list[int]:
    """Connect as the collection would; return the postmaster and all its processes."""
    assert "password" not in conninfo_to_dict(state["journal_dsn"])
    os.environ["PGPASSFILE"] = state["journal_passfile"]
    try:
        with psycopg.connect(state["journal_dsn"], connect_timeout=10) as conn:
            user, db = conn.execute("SELECT current_user, current_database()").fetchone() or ("", "")
            backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
            conn.execute("CREATE TABLE probe (x int)")
            conn.execute("INSERT INTO probe VALUES (1)")
            postmaster = _parent_of(backend)
            pids = [postmaster, *_children_of(postmaster)]
    finally:
        del os.environ["PGPASSFILE"]
    assert (user, db) == ("selfheal", "selfheal")
    assert postmaster in state["children"]
    assert backend in pids and len(pids) >= 4  # checkpointer, walwriter, ... and our session
    return pids


def test_sandbox_postgres_accepts_the_dsn_with_its_passfile_and_stops_with_the_sandbox(
    supervisor: tuple[subprocess.Popen, dict[str, Any]],
) -> None:
    proc, state = supervisor
    passfile = Path(state["journal_passfile"])
    assert passfile.stat().st_mode & 0o077 == 0  # libpq ignores a password file others can read
    secret = passfile.read_text().split(":")[-1].strip()
    assert secret and secret not in client.state_path(Path(state["run_dir"])).read_text()

    # Without the password file the server refuses the role: the password is really needed, and only there.
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(state["journal_dsn"], connect_timeout=10, passfile="/nonexistent").close()

    pids = _connect_and_list(state)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert [pid for pid in pids if procs.pid_alive(pid)] == []
    assert not Path(state["postgres_dir"]).exists()
    assert not passfile.exists()


def test_sandbox_postgres_dies_with_a_killed_supervisor(supervisor: tuple[subprocess.Popen, dict[str, Any]]) -> None:
    proc, state = supervisor
    pids = _connect_and_list(state)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(procs.pid_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert [pid for pid in pids if procs.pid_alive(pid)] == []

# Private to the zerotouch.selfheal collection: not a public API, it may change without notice.
# The processes that run a claimed action: named by the playbook when it starts, stopped by a loop that restarts.

"""Which process runs an action, and how a loop that starts again stops what the loop before it started.

ansible-runner starts every playbook in a session of its own, so killing ansible-rulebook's process group leaves
the playbooks it started running: they would go on acting on claims the new loop settles. The playbook's first
task (``intent_check`` with a ``decision_id``) names its ``ansible-playbook`` process (:func:`this_run`) in the
journal, on the action's row and only while the action is pending; on start, the loop stops every journaled run
of an unfinished action (:func:`stop`) before it verifies what was applied and decides again what was not.

A run is ``{host, boot, pid, start, session}``: ``start`` (the process's start time in clock ticks since boot)
and the boot id tell a process from a later one that got the same pid. Linux only (``/proc``); elsewhere nothing
is named and nothing is stopped.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
PLAYBOOK = "ansible-playbook"


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    session: int
    start: int
    argv: tuple[str, ...] = ()
    state: str = "S"


def parse_stat(pid: int, stat: str, argv: tuple[str, ...] = ()) -> Proc:
    """One ``/proc/<pid>/stat`` line (the command name may hold spaces and parentheses: split after the last)."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return Proc(pid, int(fields[1]), int(fields[3]), int(fields[19]), argv, fields[0])


def is_playbook(proc: Proc) -> bool:
    return any(Path(arg).name == PLAYBOOK for arg in proc.argv[:2])


def to_stop(run: Mapping[str, Any], procs: Iterable[Proc], own_session: int) -> list[int]:
    """The pids to kill for a journaled run: the playbook (when its pid still is that process), what descends from
    it, and, when it led its own session, every process left in that session. A pid reused by another process
    means the run is gone (a pid cannot be reused while a process of its session lives). Never our own session."""
    table = {p.pid: p for p in procs}
    pid, start = int(run["pid"]), int(run["start"])
    leader = table.get(pid)
    if leader is not None and leader.start != start:
        return []
    chosen: set[int] = set()
    if leader is not None:
        chosen.add(pid)
        children: dict[int, list[int]] = {}
        for p in table.values():
            children.setdefault(p.ppid, []).append(p.pid)
        todo = [pid]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in chosen:
                    chosen.add(child)
                    todo.append(child)
    if run.get("session") == pid and pid != own_session:
        chosen.update(p.pid for p in table.values() if p.session == pid)
    return sorted(p for p in chosen if table[p].session != own_session)


# --- /proc ----------------------------------------------------------------------------------------------------------


def boot_id() -> str | None:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def read(pid: int) -> Proc | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return parse_stat(pid, stat, tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a))


def processes() -> list[Proc]:
    found = []
    for entry in PROC.iterdir() if PROC.is_dir() else []:
        proc = read(int(entry.name)) if entry.name.isdigit() else None
        if proc is not None and proc.state not in ("Z", "X"):  # a zombie is dead already, waiting to be reaped
            found.append(proc)
    return found


def this_run(pid: int | None = None) -> dict[str, Any] | None:
    """The ``ansible-playbook`` process this one runs under (a module's), as a run; None outside one or /proc.

    The outermost one: a module runs in a worker that ansible-playbook forked for its task (an ``ansible-playbook``
    process too, in a session of its own, gone once the task is done); the playbook is the worker's parent."""
    found = None
    current = read(pid or os.getpid())
    while current is not None and current.pid > 1:
        if is_playbook(current):
            found = current
        current = read(current.ppid)
    if found is None:
        return None
    return {
        "host": socket.gethostname(),
        "boot": boot_id(),
        "pid": found.pid,
        "start": found.start,
        "session": found.session,
    }


def stop(run: Mapping[str, Any]) -> list[int]:
    """Kill (SIGKILL) what is left of a run on this machine; returns the pids killed. A run of another machine or
    boot cannot be reached from here and is left alone (its claim's lease lapses instead)."""
    if run.get("host") != socket.gethostname() or run.get("boot") != boot_id() or run.get("pid") is None:
        return []
    killed = []
    for pid in to_stop(run, processes(), os.getsid(0)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        killed.append(pid)
    return killed

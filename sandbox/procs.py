"""Child-process plumbing for the sandbox: free ports, readiness waits, and children that die with their parent."""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A loopback port that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent(sig: signal.Signals = signal.SIGTERM) -> None:
    # If the supervisor is killed (even with SIGKILL), the kernel sends `sig` to its children: the sandbox never
    # leaves Prometheus, Alertmanager or PostgreSQL behind. subprocess calls this after it has switched to the
    # child's user (a change of user clears the setting, so it must come after).
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig)


def spawn(
    argv: Sequence[str],
    log: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user: int | None = None,
    group: int | None = None,
    death_signal: signal.Signals = signal.SIGTERM,
) -> subprocess.Popen:
    """Start a child that logs to `log` and gets `death_signal` when this process dies (as `user`/`group`
    when given: the log is opened here, so it stays the caller's file)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # noqa: SIM115 - the child owns the descriptor
    try:
        return subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            user=user,
            group=group,
            extra_groups=[] if group is not None else None,
            preexec_fn=functools.partial(_die_with_parent, death_signal),
        )
    finally:
        out.close()


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Wait until `url` answers 2xx; fail early with the child's log if it exits."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before {url} was ready:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if 200 <= resp.status < 300:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = str(exc)
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s ({last})")


def stop(procs: Sequence[subprocess.Popen], grace: float = 5.0) -> None:
    """SIGTERM every child, then SIGKILL what is still alive after `grace` seconds."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

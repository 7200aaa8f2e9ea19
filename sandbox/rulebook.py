"""Run the collection's rulebooks against the sandbox: ansible-rulebook from the virtualenv, the installed collection.

Used by the end-to-end tests, the demo and the benchmarks::

    with Rulebook(state, run_dir=tmp, intents=intents_file, policy=policy_file) as rb:
        route_alerts(state, rb.url, rb.token)     # the sandbox's Alertmanager now posts to the rulebook too
        ...                                        # inject faults; read rb.journal

ansible-rulebook runs in its own session (process group) with the sandbox's kubeconfig, the collection installed in
``.collections`` (``make collection``) and Java 17; :meth:`Rulebook.stop` kills the whole group, so no playbook it
started outlives it, and it also dies with the process that started it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from sandbox import procs

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COLLECTIONS = ROOT / ".collections"
JAVA_HOME = os.environ.get("JAVA_HOME") or "/usr/lib/jvm/java-17-openjdk-amd64"
COLLECTION = "zerotouch.selfheal"


def free_port() -> int:
    """A loopback port that is free right now."""
    return procs.free_port()


def _own_session_dying_with_parent() -> None:
    os.setsid()  # a process group of its own: stop() kills ansible-rulebook and every playbook it started
    procs._die_with_parent()  # the sandbox's one way to tie a child's life to ours


class Rulebook:
    """One ansible-rulebook process running ``zerotouch.selfheal.<rulebook>`` against a running sandbox."""

    def __init__(
        self,
        state: dict[str, Any],
        *,
        run_dir: Path,
        intents: Path,
        rulebook: str = "remediate.yml",
        policy: Path | None = None,
        journal: Path | str | None = None,
        kubeconfig: str = "kubeconfig",
        port: int | None = None,
        token: str | None = None,
        extra_vars: dict[str, Any] | None = None,
        source_dir: Path | None = None,
        health_path: str | None = "/healthz",
    ) -> None:
        """``rulebook`` names one of the collection's rulebooks (``remediate.yml``, ``watch.yml``) or is a path to
        a rulebook file; ``source_dir`` adds a directory of event sources (``ansible-rulebook -S``) and
        ``health_path`` is what :meth:`start` polls on the source's port until it answers 200 (None: until ``/``
        answers at all, for sources without a health endpoint)."""
        self.state = state
        self.run_dir = Path(run_dir)
        self.intents = Path(intents)
        self.rulebook = rulebook
        self.policy = policy
        # A path (SQLite) or a postgresql:// URL (the sandbox's journal_dsn, its password in journal_passfile).
        self.journal: Path | str = (
            journal if isinstance(journal, str) and "://" in journal else Path(journal or self.run_dir / "journal.db")
        )
        self.kubeconfig = kubeconfig  # the sandbox state's key: the admin's, or kubeconfig_restricted
        self.port = port if port is not None else free_port()
        self.token = token if token is not None else secrets.token_urlsafe(24)
        self.extra_vars = dict(extra_vars or {})
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        self.health_url = f"http://127.0.0.1:{self.port}{health_path or '/'}"
        self.any_answer = health_path is None
        self.source_dir = source_dir
        self.log = self.run_dir / f"rulebook-{Path(rulebook).stem}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # --- life cycle --------------------------------------------------------------------------------------------

    def __enter__(self) -> Rulebook:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 90) -> Rulebook:
        """Start ansible-rulebook; return once its source answers on its health endpoint."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        variables = self.run_dir / f"rulebook-{Path(self.rulebook).stem}-vars.yml"
        variables.write_text(yaml.safe_dump(self.variables(), sort_keys=False))
        variables.chmod(0o600)
        inventory = self.run_dir / "rulebook-inventory.yml"
        host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": host}}}))
        named = os.sep not in self.rulebook  # a rulebook of the installed collection, by its full name
        argv = [
            str(BIN / "ansible-rulebook"),
            "--rulebook",
            f"{COLLECTION}.{Path(self.rulebook).stem}" if named else str(Path(self.rulebook).resolve()),
            "--inventory",
            str(inventory),
            "--vars",
            str(variables),
        ]
        if self.source_dir is not None:
            argv += ["--source-dir", str(self.source_dir)]
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                argv,
                cwd=self.run_dir,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_own_session_dying_with_parent,
            )
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop ansible-rulebook and everything it started (its whole process group)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # playbooks it started and that are still running
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)

    @property
    def pid(self) -> int | None:
        """ansible-rulebook's process id, which is also its process group's (None when not running)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # --- what it runs with -------------------------------------------------------------------------------------

    def variables(self) -> dict[str, Any]:
        """The rulebook's variables (see the header of each rulebook): the sandbox's addresses, the files given,
        and ``extra_vars`` on top (``verify_*``, ``escalation_url`` - by default the sandbox's webhook recorder -,
        the watch's ``interval``, ``burn_window``, ``burn_rate``, ...)."""
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "token": self.token,
            "intents": str(self.intents),
            "escalation_url": self.state["webhook_url"],
            "prometheus_url": self.state["prometheus_url"],
            "journal": str(self.journal),
        }
        if self.policy is not None:
            values["policy"] = str(self.policy)
        values.update(self.extra_vars)
        return values

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "JAVA_HOME": JAVA_HOME,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH") or str(COLLECTIONS),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_LOCAL_TEMP": str(self.run_dir / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "K8S_AUTH_KUBECONFIG": self.state[self.kubeconfig],
            **({"PGPASSFILE": self.state["journal_passfile"]} if isinstance(self.journal, str) else {}),
        }

    def output(self, tail: int = 6000) -> str:
        """The end of ansible-rulebook's output (for error messages)."""
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise RuntimeError(f"ansible-rulebook exited with {code} before its source listened:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError:
                if self.any_answer:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.health_url} did not answer within {timeout:.0f}s:\n{self.output()}")
            time.sleep(0.2)


def route_alerts(state: dict[str, Any], url: str, token: str | None = None, group_wait: str | None = None) -> None:
    """Make the sandbox's Alertmanager post every alert to ``url`` as well as to its webhook recorder.

    Rewrites its configuration (a child route per receiver, the first with ``continue: true``) and reloads it.
    The sandbox sends a new alert group at once; ``group_wait`` holds the first notification of each group that
    long on this route, as production routes do (Alertmanager's default is 30s).
    """
    route_alerts_to(state, [(url, token)], group_wait)


def route_alerts_to(
    state: dict[str, Any], targets: list[tuple[str, str | None]], group_wait: str | None = None
) -> None:
    """Make the sandbox's Alertmanager post every alert to each ``(url, token)`` - receivers of an HA pair, each
    notified on a route of its own, so each gets every alert and a dead one does not hold back the others - as
    well as to its webhook recorder (see :func:`route_alerts`)."""
    receivers = []
    for n, (url, token) in enumerate(targets):
        hook: dict[str, Any] = {"url": url, "send_resolved": True, "max_alerts": 0}
        if token:
            hook["http_config"] = {"authorization": {"type": "Bearer", "credentials": token}}
        receivers.append({"name": "selfheal" if n == 0 else f"selfheal-{n + 1}", "webhook_configs": [hook]})
    _configure(state, receivers, must_hold=targets[-1][0], group_wait=group_wait)


def unroute_alerts(state: dict[str, Any]) -> None:
    """Undo :func:`route_alerts`: Alertmanager posts to its webhook recorder only."""
    _configure(state, [], must_hold=state["webhook_url"])


def _configure(
    state: dict[str, Any], receivers: list[dict[str, Any]], must_hold: str, group_wait: str | None = None
) -> None:
    config_file = Path(state["run_dir"]) / "alertmanager" / "alertmanager.yml"
    config = yaml.safe_load(config_file.read_text())
    recorder = {
        "name": "recorder",
        "webhook_configs": [{"url": state["webhook_url"], "send_resolved": True, "max_alerts": 0}],
    }
    route = config["route"]
    route["receiver"] = "recorder"
    held = {"group_wait": group_wait} if group_wait else {}
    children = [{"receiver": r["name"], "continue": True, **held} for r in receivers]
    route["routes"] = [*children, {"receiver": "recorder"}]
    config["receivers"] = [*receivers, recorder]
    tmp = config_file.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.replace(config_file)
    request = urllib.request.Request(state["alertmanager_url"] + "/-/reload", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        resp.read()
    with urllib.request.urlopen(state["alertmanager_url"] + "/api/v2/status", timeout=10) as resp:
        loaded = json.loads(resp.read())["config"]["original"]
    if must_hold not in loaded:
        raise RuntimeError(f"Alertmanager did not load the route to {must_hold}")

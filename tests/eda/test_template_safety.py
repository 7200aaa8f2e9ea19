"""No text from outside is ever templated: the attack table through the real paths, nothing runs, all kept verbatim.

ansible-rulebook hands the whole event of a rule to the playbook it starts as extra vars, and ansible-core 2.19
renders extra vars as trusted templates (``yaml.dump`` into ``env/extravars``, ``-e @env/extravars``). So the
sources put no alert text on the rule engine's queue at all: they check the alert in their own process, and the
only events are ``{kind, decision_ids, decisions}`` with ids and names from the intent file. These tests
run every templating form ansible-core and Jinja2 accept (``tests/attacks.py``) in every label, annotation and
notification field:

- through the real ``ansible-rulebook`` running the collection's own ``zerotouch.selfheal.remediate``, firing and
  resolved, with a cluster that cannot be reached, so every check escalates from the source (the escalation body
  is where alert text reaches a human: verbatim in the generic format, inert in Slack's);
- through a manual ``ansible-playbook zerotouch.selfheal.remediate -e alert_file=...``.

Nothing may create a marker file, the journal must hold every string verbatim, and no playbook may start.
The acting path (an event -> the remediate playbook) runs in tests/e2e/test_closed_loop.py with the same table.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal

from sandbox.payloads import alert, notification
from tests.attacks import attack_strings

from .conftest import COLLECTIONS, TOKEN, free_port

BIN = Path(sys.executable).parent
JAVA_HOME = os.environ.get("JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64")
NAMESPACE = "shop"

NO_RULEBOOK = not (BIN / "ansible-rulebook").exists() or not (Path(JAVA_HOME) / "bin" / "java").exists()


class Recorder:
    """A webhook receiver keeping every body it is sent (the human's side of an escalation)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                recorder.bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    found = Recorder()
    yield found
    found.close()


def environment(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "JAVA_HOME": JAVA_HOME,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "K8S_AUTH_KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),  # the cluster cannot be reached
        "HOME": str(tmp_path),
    }


def intents_for(count: int) -> list[dict[str, Any]]:
    objectives = {"availability": 99.0, "max_latency_ms": 250, "max_error_rate": 1.0}
    return [{"service": f"web-{i}", "namespace": NAMESPACE, "objectives": objectives} for i in range(count)]


def attack_notification(index: int, text: str, status: str = "firing") -> dict[str, Any]:
    """The string in every label but the two that name the service, every annotation and notification field."""
    fired = alert(
        "HighLatency",
        status,
        f"a{index:015d}",
        namespace=NAMESPACE,
        service=f"web-{index}",
        annotations={"summary": text, "description": text, "runbook_url": text},
        severity="page",
        attack=text,
        pod=text,
    )
    fired["generatorURL"] = text
    return notification(fired, groupLabels={"alertname": text}, groupKey=text, externalURL=text, receiver=text)


def post(port: int, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def wait_for(probe: Any, timeout: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.3)
    return found


def decisions(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    with Journal(journal) as reader:
        return reader.query(namespace=None, limit=100_000, include_snapshot=True)


@pytest.mark.skipif(NO_RULEBOOK, reason="needs ansible-rulebook and Java 17")
@pytest.mark.parametrize("fmt", ["generic", "slack"])
def test_attack_text_through_the_real_rulebook_runs_nothing_and_is_kept_verbatim(
    fmt: str, tmp_path: Path, recorder: Recorder
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    attacks = attack_strings(markers)
    intents, journal, port = tmp_path / "intents.yml", tmp_path / "journal.db", free_port()
    intents.write_text(yaml.safe_dump({"intents": intents_for(len(attacks))}))
    variables = {
        "port": port,
        "token": TOKEN,
        "intents": str(intents),
        "prometheus_url": "http://127.0.0.1:9",
        "escalation_url": recorder.url,
        "escalation_format": fmt,
        "journal": str(journal),
    }
    (tmp_path / "vars.yml").write_text(yaml.safe_dump(variables))
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {}}}}))
    log = tmp_path / "rulebook.log"
    argv = [str(BIN / "ansible-rulebook"), "--rulebook", "zerotouch.selfheal.remediate", "-i", "inventory.yml"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*argv, "--vars", "vars.yml"],
            cwd=tmp_path,
            env=environment(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: _answers(port, proc), 90, "the source to listen", log)
        for index, text in enumerate(attacks):
            assert post(port, attack_notification(index, text)) == 200
        # A service the intents do not declare, named by the attack itself: decided "none", journaled as data.
        stray = alert(fingerprint="b000000000000000", namespace=attacks[0], service=attacks[4], attack=attacks[8])
        assert post(port, notification(stray, groupLabels={"x": attacks[9]})) == 200
        wait_for(lambda: len(recorder.bodies) >= len(attacks), 120, "an escalation per attack", log)
        for index, text in enumerate(attacks):
            assert post(port, attack_notification(index, text, "resolved")) == 200

        def closings() -> list[dict[str, Any]] | None:
            found = [d for d in decisions(journal) if d["rule"] == "alert-resolved"]
            return found if len(found) >= len(attacks) else None

        resolved = wait_for(closings, 120, "every incident to close", log)
    finally:
        _stop(proc)

    assert list(markers.iterdir()) == [], "alert text ran a command on the controller"
    output = log.read_text(errors="replace")
    assert "PLAY [" not in output, "a playbook started: an event reached the rule engine"
    journaled = decisions(journal)
    for index, text in enumerate(attacks):
        (failed,) = [d for d in journaled if d["fingerprint"] == f"a{index:015d}" and d["rule"] == "check-failed"]
        kept = failed["snapshot"]["alert"]
        assert (kept["labels"]["attack"], kept["labels"]["pod"]) == (text, text)
        assert kept["annotations"] == {"summary": text, "description": text, "runbook_url": text}
        assert (kept["groupLabels"], kept["groupKey"], kept["externalURL"], kept["receiver"], kept["generatorURL"]) == (
            {"alertname": text},
            text,
            text,
            text,
            text,
        )
        (closing,) = [d for d in resolved if d["fingerprint"] == f"a{index:015d}"]
        assert closing["snapshot"]["alert"]["labels"]["attack"] == text
    with Journal(journal) as reader:
        assert {i["status"] for i in reader.incidents(namespace=NAMESPACE, limit=10_000)} == {"closed"}
    (stray_decision,) = [d for d in journaled if d["fingerprint"] == "b000000000000000"]
    assert (stray_decision["namespace"], stray_decision["service"], stray_decision["rule"]) == (
        attacks[0],
        attacks[4],
        "no-intent",
    )
    assert stray_decision["snapshot"]["alert"]["groupLabels"] == {"x": attacks[9]}
    bodies = [json.loads(body) for body in recorder.bodies]
    if fmt == "generic":
        evidence = {b["service"]["name"]: b["evidence"]["alert"] for b in bodies}
        for index, text in enumerate(attacks):
            assert evidence[f"web-{index}"]["labels"]["attack"] == text
            assert evidence[f"web-{index}"]["annotations"]["summary"] == text
    else:
        shown = "\n".join(block["text"]["text"] for b in bodies for block in b["blocks"] if "text" in block)
        assert "<!channel>" not in shown and "<http://evil.example|click>" not in shown and "@here" not in shown
        assert "&lt;!channel&gt;" in shown and "&lt;http://evil.example|click&gt;" in shown


def test_an_alert_file_given_to_a_manual_run_is_read_as_data(tmp_path: Path) -> None:
    """ansible-playbook zerotouch.selfheal.remediate -e alert_file=...: the file is alert text, read by the module."""
    playbook = shutil.which("ansible-playbook", path=str(BIN))
    if playbook is None:
        pytest.skip("ansible-playbook is not installed next to this Python")
    markers = tmp_path / "markers"
    markers.mkdir()
    attacks = attack_strings(markers)
    labels = {f"attack_{i}": text for i, text in enumerate(attacks)}
    annotations = {f"note_{i}": text for i, text in enumerate(attacks)}
    # The service has no intent: the check needs no cluster, decides "none" and journals the alert.
    fired = alert(fingerprint="c000000000000000", service="undeclared", annotations=annotations, **labels)
    body = notification(fired, groupLabels={"g": attacks[0]}, groupKey=attacks[1], externalURL=attacks[2])
    alert_file, journal, intents = tmp_path / "alert.json", tmp_path / "journal.db", tmp_path / "intents.yml"
    alert_file.write_text(json.dumps(body))
    intents.write_text(yaml.safe_dump({"intents": intents_for(1)}))
    run = subprocess.run(
        [
            playbook,
            "zerotouch.selfheal.remediate",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            json.dumps(
                {
                    "alert_file": str(alert_file),
                    "intents": str(intents),
                    "journal": str(journal),
                    "escalation_url": "http://127.0.0.1:9/hook",
                    "prometheus_url": "http://127.0.0.1:9",
                }
            ),
        ],
        capture_output=True,
        text=True,
        env=environment(tmp_path),
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "Stop, there is nothing to do" in run.stdout
    assert list(markers.iterdir()) == [], "alert text ran a command on the controller"
    (decision,) = decisions(journal)
    assert (decision["rule"], decision["fingerprint"]) == ("no-intent", "c000000000000000")
    kept = decision["snapshot"]["alert"]
    assert {k: v for k, v in kept["labels"].items() if k.startswith("attack_")} == labels
    assert kept["annotations"] == annotations
    assert (kept["groupLabels"], kept["groupKey"], kept["externalURL"]) == ({"g": attacks[0]}, attacks[1], attacks[2])


def _answers(port: int, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"ansible-rulebook exited with {proc.returncode}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the rulebook we started and everything it spawned (its own session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=15)


def test_the_attack_table_does_run_when_handed_over_as_extra_vars(tmp_path: Path) -> None:
    """The control experiment: what these tests guard against. The table, given as ansible-rulebook gives an
    event (``yaml.dump`` into an extra-vars file), runs commands - so finding no marker above means something."""
    playbook = shutil.which("ansible-playbook", path=str(BIN))
    if playbook is None:
        pytest.skip("ansible-playbook is not installed next to this Python")
    markers = tmp_path / "markers"
    markers.mkdir()
    extravars = tmp_path / "extravars"
    extravars.write_text(yaml.dump({"ansible_eda": {"event": {"labels": {"attack": attack_strings(markers)[0]}}}}))
    show = tmp_path / "show.yml"
    show.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug:\n        msg: '{{ ansible_eda.event.labels.attack }}'\n"
    )
    subprocess.run(
        [playbook, "-i", "localhost,", "-c", "local", str(show), "-e", f"@{extravars}"],
        capture_output=True,
        text=True,
        env=environment(tmp_path),
        timeout=180,
        check=False,
    )
    assert [p.name for p in markers.iterdir()] == ["expr"]

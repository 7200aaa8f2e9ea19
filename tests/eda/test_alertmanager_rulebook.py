"""The source inside the real ansible-rulebook: found through the collection path, feeding run_playbook."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from sandbox.payloads import alert, notification
from sandbox.wait import wait_until

from .conftest import COLLECTIONS, TOKEN, free_port

BIN = Path(sys.executable).parent
JAVA_HOME = os.environ.get("JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64")

pytestmark = [
    pytest.mark.skipif(not (BIN / "ansible-rulebook").exists(), reason="ansible-rulebook is not installed"),
    pytest.mark.skipif(
        not (Path(JAVA_HOME) / "bin" / "java").exists(),
        reason=f"ansible-rulebook needs Java 17: no java under JAVA_HOME={JAVA_HOME}",
    ),
]

RECORD_PLAYBOOK = """\
- name: Record the alert ansible-rulebook handed over
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Append one line per run
      ansible.builtin.lineinfile:
        path: "{{ out }}/runs.log"
        line: "{{ ansible_eda.event.meta.uuid }}"
        create: true
        mode: "0600"
    - name: Write the label a module receives
      ansible.builtin.copy:
        content: "{{ ansible_eda.event.labels.evil }}"
        dest: "{{ out }}/label.txt"
        mode: "0600"
    - name: Write the event
      ansible.builtin.copy:
        content: "{{ ansible_eda.event | to_json }}"
        dest: "{{ out }}/event.json"
        mode: "0600"
"""


def rulebook(port: int, out: Path) -> list[dict]:
    return [
        {
            "name": "Remediate what Alertmanager reports",
            "hosts": "all",
            "sources": [
                {"zerotouch.selfheal.alertmanager": {"host": "127.0.0.1", "port": port, "token": "{{ am_token }}"}}
            ],
            "rules": [
                {
                    "name": "Run the playbook for a firing alert",
                    "condition": 'event.status == "firing" and event.service == "checkout"',
                    "action": {"run_playbook": {"name": str(out / "record.yml"), "extra_vars": {"out": str(out)}}},
                },
                {
                    "name": "Print a resolved alert",
                    "condition": 'event.status == "resolved"',
                    "action": {"print_event": {"pretty": True}},
                },
            ],
        }
    ]


@pytest.fixture
def rulebook_run(tmp_path: Path) -> Iterator[tuple[int, Path, Callable[[], str]]]:
    """Start ansible-rulebook on a temporary rulebook; always kill it (and the playbooks it runs) afterwards."""
    port = free_port()
    (tmp_path / "record.yml").write_text(RECORD_PLAYBOOK)
    (tmp_path / "rulebook.yml").write_text(yaml.safe_dump(rulebook(port, tmp_path), sort_keys=False))
    (tmp_path / "vars.yml").write_text(yaml.safe_dump({"am_token": TOKEN}))
    (tmp_path / "inventory.yml").write_text(
        yaml.safe_dump({"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}})
    )
    env = {
        **os.environ,
        "JAVA_HOME": JAVA_HOME,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        # ansible-rulebook finds zerotouch.selfheal.alertmanager with `ansible-galaxy collection list`.
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
    }
    log = tmp_path / "rulebook.log"
    cmd = [str(BIN / "ansible-rulebook"), "--rulebook", "rulebook.yml", "-i", "inventory.yml", "--vars", "vars.yml"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_for_port(proc, port, log)
        yield port, tmp_path, lambda: log.read_text(errors="replace")
    finally:
        _kill_group(proc)


def _wait_for_port(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ansible-rulebook exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"the source did not listen within 90 s:\n{log.read_text()[-4000:]}")


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop the rulebook we started and everything it spawned (its own session, so its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers (ansible-runner, ansible-playbook), if any
    except ProcessLookupError:
        pass
    proc.wait(timeout=15)


def post(port: int, body: dict, token: str = TOKEN) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_rulebook_runs_one_playbook_per_alert_with_the_text_verbatim(
    rulebook_run: tuple[int, Path, Callable[[], str]],
) -> None:
    port, out, output = rulebook_run
    target = out / "owned"
    evil = f"{{{{ lookup('pipe', 'touch {target}') }}}}"
    firing = notification(alert(fingerprint="e2e0000000000001", evil=evil))
    assert post(port, firing, token="wrong") == 401
    assert post(port, firing) == 200
    assert post(port, firing) == 200  # Alertmanager's re-send: must not run the playbook again
    resolved = notification(alert(status="resolved", fingerprint="e2e0000000000001", evil=evil))
    assert post(port, resolved) == 200

    # Actions run one after the other, so once the resolved event is printed a duplicate would have run too.
    def tail() -> str:
        return output()[-4000:]

    wait_until((out / "event.json").exists, 120, "the playbook's output", interval=0.3, detail=tail)
    wait_until(
        lambda: "'status': 'resolved'" in output(), 120, "the resolved event", interval=0.3, detail=tail
    )  # print_event's repr
    assert len((out / "runs.log").read_text().splitlines()) == 1
    assert (out / "label.txt").read_text() == evil
    assert not target.exists(), "the alert's label ran a command on the controller"
    event = json.loads((out / "event.json").read_text())
    assert (event["incident"], event["meta"]["source"]["type"]) == (
        "shop/checkout/HighLatency",
        "zerotouch.selfheal.alertmanager",
    )
    assert f"'firing_event_id': '{event['meta']['uuid']}'" in output()  # the resolved event links to the firing one
    assert TOKEN not in output() and TOKEN not in json.dumps(event)

"""Alert text reaches ansible-playbook as extra vars and must never be run as a template.

The event travels the way ansible-rulebook's run_playbook sends it: ``yaml.dump`` of ``{"ansible_eda": {"event":
...}}`` into ``env/extravars`` of an ansible-runner private data dir; ansible-runner passes it with
``-e @env/extravars`` and ansible-core 2.19 loads it as trusted templates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from sandbox.payloads import alert, notification

RUNNER = Path(sys.executable).with_name("ansible-runner")

PLAYBOOK = """\
- name: Show an alert's text
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Print the label as a variable
      ansible.builtin.debug:
        var: ansible_eda.event.labels.evil
    - name: Print the label through a template
      ansible.builtin.debug:
        msg: "{{ ansible_eda.event.labels.evil }}"
    - name: Copy it into a fact, then render the fact
      ansible.builtin.set_fact:
        copied: "{{ ansible_eda.event.labels.evil }}"
    - name: Write what a module receives
      ansible.builtin.copy:
        content: "{{ copied }}"
        dest: "{{ out }}/label.txt"
        mode: "0600"
    - name: Write the whole event
      ansible.builtin.copy:
        content: "{{ ansible_eda.event | to_json }}"
        dest: "{{ out }}/event.json"
        mode: "0600"
"""


def run_playbook_with_event(event: dict, work: Path) -> subprocess.CompletedProcess[str]:
    """Run PLAYBOOK through ansible-runner with ``event`` as ansible-rulebook would hand it over."""
    pdd = work / "pdd"
    for sub in ("env", "project", "inventory"):
        (pdd / sub).mkdir(parents=True)
    (pdd / "env" / "extravars").write_text(yaml.dump({"ansible_eda": {"event": event}, "out": str(work)}))
    (pdd / "project" / "show.yml").write_text(PLAYBOOK)
    (pdd / "inventory" / "hosts").write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    env = {**os.environ, "PATH": f"{RUNNER.parent}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(RUNNER), "run", str(pdd), "-p", "show.yml"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


@pytest.fixture
def evil_event(source: SimpleNamespace, tmp_path: Path) -> tuple[str, dict]:
    target = tmp_path / "owned"
    evil = f"{{{{ lookup('pipe', 'touch {target}') }}}}"
    annotations = {"summary": "p99 {{ $value }} {# note #} {% raw %}", evil: "keys are never rendered"}
    body = notification(alert(evil=evil) | {"annotations": annotations})
    return evil, body


@pytest.mark.skipif(not RUNNER.exists(), reason="ansible-runner is not installed next to this Python")
def test_a_template_in_a_label_is_shown_verbatim_and_never_run(
    source: SimpleNamespace, evil_event: tuple[str, dict], tmp_path: Path
) -> None:
    evil, body = evil_event
    (event,) = source.to_events(body)
    result = run_playbook_with_event(event, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not (tmp_path / "owned").exists(), "the label's lookup ran on the controller"
    shown = json.dumps(evil)  # how the default callback prints the string
    assert f'"ansible_eda.event.labels.evil": {shown}' in result.stdout
    assert f'"msg": {shown}' in result.stdout
    assert (tmp_path / "label.txt").read_text() == evil
    written = json.loads((tmp_path / "event.json").read_text())
    assert written["labels"]["evil"] == evil
    assert written["annotations"] == {
        "summary": "p99 {{ $value }} {# note #} {% raw %}",
        evil: "keys are never rendered",
    }
    assert written["service"] == "checkout"


@pytest.mark.skipif(not RUNNER.exists(), reason="ansible-runner is not installed next to this Python")
def test_without_escaping_the_same_label_does_run(
    source: SimpleNamespace, evil_event: tuple[str, dict], tmp_path: Path
) -> None:
    # The control experiment: this is what escape_templates prevents (and why the test above can fail).
    evil, body = evil_event
    body["alerts"][0]["annotations"] = {}
    (event,) = source.to_events(body, escape=False)
    run_playbook_with_event(event, tmp_path)
    assert (tmp_path / "owned").exists()


def test_unsafe_markers_do_not_survive_the_extravars_file(tmp_path: Path) -> None:
    """Why the source escapes instead of marking text unsafe: yaml.dump cannot carry either marker."""
    if shutil.which("ansible-playbook", path=str(RUNNER.parent)) is None:
        pytest.skip("ansible-playbook is not installed next to this Python")
    target = tmp_path / "owned"
    evil = f"{{{{ lookup('pipe', 'touch {target}') }}}}"
    extravars = tmp_path / "extravars"
    extravars.write_text(yaml.dump({"ansible_eda": {"event": {"label": {"__ansible_unsafe": evil}}}}))
    playbook = tmp_path / "show.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug:\n        msg: '{{ ansible_eda.event.label }}'\n"
    )
    subprocess.run(
        [
            str(RUNNER.parent / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(playbook),
            "-e",
            f"@{extravars}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
        check=False,
    )
    assert target.exists(), "__ansible_unsafe in a YAML extravars file is a plain mapping and gets rendered"

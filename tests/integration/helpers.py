"""Shared helpers of the module integration tests: run tasks through ansible-playbook, talk to the sandbox.

Each test writes a small playbook (localhost, local connection) whose tasks use the installed collection, runs
it with ``ansible-playbook`` exactly as a user would, and reads every task's registered result back from a JSON
file the playbook's last task writes. The cluster is checked independently, through the official ``kubernetes``
client with the sandbox's kubeconfig.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sandbox.cluster import (  # noqa: F401 - the tests' cluster helpers
    Kube,
    create_deployment,
    create_namespace,
    deployment_manifest,
    kube_client,
    rolled_out,
)
from sandbox.wait import wait_until  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = "zerotouch.selfheal"
T = TypeVar("T")


@dataclass
class PlaybookRun:
    """The registered result of each task, in order, and what ansible-playbook printed."""

    results: list[dict[str, Any]]
    stdout: str
    returncode: int

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.results[index]


def _collections_path() -> str:
    """The installed collection (Makefile: ``make collection`` -> .collections); ANSIBLE_COLLECTIONS_PATH wins."""
    return os.environ.get("ANSIBLE_COLLECTIONS_PATH") or str(ROOT / ".collections")


def run_tasks(
    tmp_path: Path,
    tasks: list[dict[str, Any]],
    *,
    check: bool = False,
    diff: bool = False,
    env: dict[str, str] | None = None,
) -> PlaybookRun:
    """Run ``tasks`` in one play on localhost; failures are registered (ignore_errors), not raised.

    ``check``/``diff`` are the command-line ``--check``/``--diff``; a task may also set ``check_mode``/``diff``.
    """
    out = tmp_path / f"results-{time.monotonic_ns()}.json"
    play_tasks = []
    for index, task in enumerate(tasks):
        task = dict(task)
        module = next(k for k in task if k.startswith(COLLECTION + "."))
        task.setdefault("name", f"Run {module} ({index})")
        task.update(register=f"result_{index}", ignore_errors=True)
        play_tasks.append(task)
    names = ", ".join(f"result_{i}" for i in range(len(tasks)))
    play_tasks.append(
        {
            "name": "Write the results",
            "ansible.builtin.copy": {"content": "{{ [" + names + "] | to_json }}", "dest": str(out), "mode": "0600"},
            "check_mode": False,
            "diff": False,
        }
    )
    playbook = tmp_path / f"play-{time.monotonic_ns()}.yml"
    playbook.write_text(
        yaml.safe_dump([{"name": "Run the modules", "hosts": "localhost", "gather_facts": False, "tasks": play_tasks}])
    )
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local", str(playbook)]
    argv += ["--check"] if check else []
    argv += ["--diff"] if diff else []
    run_env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=_collections_path(),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        **(env or {}),
    )
    proc = subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    if not out.exists():
        raise AssertionError(f"ansible-playbook failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return PlaybookRun(json.loads(out.read_text()), proc.stdout + proc.stderr, proc.returncode)


def task(module: str, check_mode: bool | None = None, diff: bool | None = None, **options: Any) -> dict[str, Any]:
    """One task of ``zerotouch.selfheal.<module>``."""
    entry: dict[str, Any] = {f"{COLLECTION}.{module}": options}
    if check_mode is not None:
        entry["check_mode"] = check_mode
    if diff is not None:
        entry["diff"] = diff
    return entry


def in_diff(output: str, sign: str, text: str) -> bool:
    """Whether the printed diff (``--diff``) has a ``-``/``+`` line containing ``text``."""
    return any(line.startswith(sign) and text in line for line in output.splitlines())


def assert_ok(result: dict[str, Any], changed: bool) -> None:
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is changed, result.get("msg")


def assert_failed(result: dict[str, Any], message: str) -> None:
    assert result.get("failed") is True, result
    assert message in result["msg"], result["msg"]


def template_of(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]  # type: ignore[no-any-return]


def bad_release(kube: Kube, namespace: str, name: str = "web") -> None:
    """A fresh namespace with Deployment ``name``: revision 1 runs shop/web:1.0, revision 2 (current, the bad
    release) shop/web:2.0, rolled out."""
    create_namespace(kube, namespace)
    create_deployment(kube, namespace, name, replicas=2, image="shop/web:1.0")
    patch = {"spec": {"template": {"spec": {"containers": [{"name": name, "image": "shop/web:2.0"}]}}}}
    kube.apps.patch_namespaced_deployment(name, namespace, patch)
    wait_until(lambda: rolled_out(kube, namespace, name), what="revision 2 to roll out")

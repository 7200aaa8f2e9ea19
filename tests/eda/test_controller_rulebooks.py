"""The controller rulebooks for real: ansible-rulebook's run_job_template against a stand-in for the controller's API.

No automation controller can run here, so ``sandbox/controller.py`` serves the part of its API ansible-rulebook
calls (config, the template lookup by name and organization, the launch, the job polling) and records every
request. The real ``ansible-rulebook`` runs each ``_controller`` rulebook of the installed collection against the
sandbox (cluster stand-in, simulator, Prometheus) on its PostgreSQL journal, as the loop's own ServiceAccount, and
a bad rollout is driven through it: for ``remediate_controller`` an Alertmanager notification posted to the
receiver carrying attack text in every field, for ``watch_controller`` the intent watch finding the breach.

The stand-in's job template runs the collection's remediate playbook as the controller's job would: in a process
of its own, with the template's own variables (the journal's URL, the escalation webhook) under the launch's, and
the environment its credentials inject (PGPASSFILE, the kubeconfig). So the test checks the exact launch request -
the template found by name in the right organization (a template of the same name in another one is a decoy), the
extra vars ``{"decision_ids": [<id>, ...]}`` and nothing else - and that this is enough: the job reads the decision from
the shared journal by that id and rolls back, the source verifies the recovery. No alert text and no name from the
event reaches any request, and nothing the attack text asks for runs.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.store import Journal, journal_exists
from packaging.requirements import Requirement
from psycopg.conninfo import conninfo_to_dict

from sandbox import client
from sandbox.cluster import create_namespace, deployment_manifest, grant_selfheal, kube_client, rolled_out
from sandbox.controller import Controller, JobTemplate, Request
from sandbox.payloads import alert, notification
from sandbox.rulebook import COLLECTIONS, Rulebook
from sandbox.wait import wait_until
from tests.attacks import attack_strings

JAVA_HOME = Path(os.environ.get("JAVA_HOME") or "/usr/lib/jvm/java-17-openjdk-amd64")
ROOT = Path(__file__).resolve().parents[2]
NEEDS_THE_LOOP = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not (JAVA_HOME / "bin" / "java").exists(), reason="ansible-rulebook needs Java 17"),
]

TEMPLATE, ORGANIZATION = "selfheal-remediate", "SelfHeal"
WINDOW = "15s"
VERIFY = {"verify_settle_seconds": 3, "verify_interval": 2, "verify_window_seconds": 10, "verify_timeout_seconds": 90}
RULEBOOKS = ["remediate_controller.yml", "watch_controller.yml"]


class ControllerRulebook(Rulebook):
    """A rulebook run with the controller's URL and token, as an EDA controller activation is given them."""

    def __init__(self, *args: Any, controller: Controller, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.controller = controller

    def environment(self) -> dict[str, str]:
        return {
            **super().environment(),
            "EDA_CONTROLLER_URL": self.controller.url,
            "EDA_CONTROLLER_TOKEN": self.controller.token,
            "EDA_CONTROLLER_SSL_VERIFY": "no",
            "EDA_JOB_TEMPLATE_REFRESH_DELAY": "0.5",  # poll the job every half second, not every 10 s
        }


@dataclass
class Run:
    state: dict[str, Any]
    namespace: str
    controller: Controller
    rulebook: ControllerRulebook
    kube: Any

    def decisions(self) -> list[dict[str, Any]]:
        if not journal_exists(str(self.rulebook.journal)):
            return []
        with Journal(self.rulebook.journal) as journal:
            return journal.query(namespace=self.namespace, limit=1000, include_snapshot=True)

    def detail(self) -> str:
        jobs = [
            (j.id, j.status, j.log.read_text(errors="replace")[-3000:] if j.log else "")
            for j in self.controller.jobs.values()
        ]
        return f"jobs: {jobs}\nansible-rulebook output:\n{self.rulebook.output()}"

    def image(self) -> str:
        deployment = self.kube.deployment(self.namespace, "web")
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def intent(namespace: str) -> dict[str, Any]:
    return {
        "service": "web",
        "namespace": namespace,
        "target": {"kind": "Deployment", "name": "web"},
        "objectives": {"availability": 99.0, "max_latency_ms": 250, "max_error_rate": 1.0},
        "recovery": {"min_replicas": 2, "max_replicas": 8},
        "indicators": {"window": WINDOW},
    }


def project_playbook(project: Path) -> Path:
    """The job template's project: the one playbook docs/controller.md gives, importing the collection's."""
    project.mkdir(parents=True, exist_ok=True)
    playbook = project / "remediate.yml"
    playbook.write_text(
        "- name: Remediate what the rulebook activation decided\n"
        "  ansible.builtin.import_playbook: zerotouch.selfheal.remediate\n"
    )
    return playbook


@pytest.fixture
def run(
    request: pytest.FixtureRequest, sandbox: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Run]:
    """A workload of its own, the stand-in with its job template, and the rulebook running against both."""
    rulebook_name = request.param
    namespace = "ctl-" + rulebook_name.removesuffix("_controller.yml")
    kube = kube_client(sandbox)
    create_namespace(kube, namespace)
    grant_selfheal(kube, namespace)
    manifest = deployment_manifest(namespace, "web", replicas=3, image="acme/web:2.0")
    manifest["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "500m"}}
    kube.apps.create_namespaced_deployment(namespace, manifest)
    wait_until(lambda: rolled_out(kube, namespace, "web"), 60, f"{namespace}/web")
    served = f"sum(rate(http_requests_total{{namespace='{namespace}',code='200'}}[{WINDOW}]))"
    wait_until(lambda: (client.scalar(sandbox, served) or 0) > 90, 90, f"a full window of metrics of {namespace}")

    monkeypatch.setenv("PGPASSFILE", sandbox["journal_passfile"])  # this process reads the shared journal too
    # The job template's journal credential (docs/controller.md): libpq's own variables, the password among them,
    # and the bare scheme as its journal; the activation here takes the other form, a URL and a password file.
    where = conninfo_to_dict(sandbox["journal_dsn"])
    password = Path(sandbox["journal_passfile"]).read_text().splitlines()[0].rsplit(":", 1)[1]
    job_env = {
        "PGHOST": str(where["host"]),
        "PGPORT": str(where["port"]),
        "PGDATABASE": str(where["dbname"]),
        "PGUSER": str(where["user"]),
        "PGPASSWORD": password,
        "K8S_AUTH_KUBECONFIG": sandbox["kubeconfig_restricted"],  # the cluster's credential
        "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH") or str(COLLECTIONS),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
    }
    template_vars = {  # the job template's own Variables: no address, no password
        "journal": "postgresql://",
        "escalation_url": sandbox["webhook_url"],
        "escalation_format": "generic",
    }
    templates = [
        JobTemplate(TEMPLATE, organization="Default"),  # a decoy: same name, the activation's default organization
        JobTemplate(
            TEMPLATE,
            organization=ORGANIZATION,
            playbook=str(project_playbook(tmp_path / "project")),
            extra_vars=template_vars,
            env=job_env,
        ),
    ]
    intents = tmp_path / "intents.yml"
    intents.write_text(yaml.safe_dump({"intents": [intent(namespace)]}))
    variables = {
        "job_template": TEMPLATE,
        "organization": ORGANIZATION,
        "recheck_settle_seconds": 3,
        "interval": 2,  # the watch's tick (the alert receiver has no such option and ignores it)
        **VERIFY,
    }
    with Controller(templates, token=secrets.token_urlsafe(16), run_dir=tmp_path / "controller") as controller:
        rulebook = ControllerRulebook(
            sandbox,
            run_dir=tmp_path,
            intents=intents,
            rulebook=rulebook_name,
            journal=sandbox["journal_dsn"],
            kubeconfig="kubeconfig_restricted",
            extra_vars=variables,
            controller=controller,
        )
        rulebook.start()
        try:
            yield Run(sandbox, namespace, controller, rulebook, kube)
        finally:
            rulebook.stop()


def drive(run: Run, faults: Callable[..., Any], markers: Path) -> list[str]:
    """Break the service; for the alert receiver, report it with attack text everywhere. The text to look for."""
    faults("bad-rollout", namespace=run.namespace, service="web")
    if run.rulebook.rulebook != "remediate_controller.yml":
        return []  # the intent watch finds the breach in Prometheus by itself
    attacks = attack_strings(markers)[:8]
    fired = alert(
        "HighErrorRate",
        "firing",
        "c7100000000000aa",
        namespace=run.namespace,
        service="web",
        annotations={"summary": attacks[0], "description": attacks[1], "runbook_url": attacks[2]},
        severity="page",
        pod=attacks[3],
        attack=attacks[4],
    )
    fired["generatorURL"] = attacks[5]
    body = notification(fired, groupKey=attacks[6], externalURL=attacks[7], groupLabels={"service": "web"})
    request = urllib.request.Request(
        run.rulebook.url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {run.rulebook.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
    # Checked before the breach shows, the decision is "none" and the same alert is checked again after the settle.
    return attacks


@pytest.mark.parametrize("run", [pytest.param(name, marks=NEEDS_THE_LOOP) for name in RULEBOOKS], indirect=True)
def test_the_controller_rulebook_launches_the_job_template_with_the_decision_ids_only(
    run: Run, faults: Callable[..., Any], tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    attacks = drive(run, faults, markers)

    def recovered() -> tuple[dict[str, Any], dict[str, Any]] | None:
        for decision in run.decisions():
            for entry in decision["actions"]:
                if entry["action"] == "rollback" and entry["outcome"] not in ("pending", "skipped"):
                    return decision, entry
        return None

    found = wait_until(recovered, 240, f"the rollback of {run.namespace} to end", 1, run.detail)
    assert found is not None
    decision, entry = found
    assert entry["outcome"] == "recovered", (entry, run.detail())
    assert run.image() == "acme/web:2.0", "the job rolled the bad release back"

    (launch,) = run.controller.launches()
    decoy, chosen = run.controller.templates[1], run.controller.templates[2]
    assert (decoy.organization, chosen.organization) == ("Default", ORGANIZATION)
    assert launch.path == f"/api/v2/job_templates/{chosen.id}/launch/", "the template of the given organization"
    # Exactly the decision's id: no event (include_events: false), no alert text, no name from the intent.
    assert launch.json() == {"extra_vars": {"decision_ids": [decision["id"]]}, "limit": "all"}
    assert launch.headers["authorization"] == f"Bearer {run.controller.token}"
    lookups = [r for r in run.controller.requests if r.path == "/api/v2/unified_job_templates/"]
    assert [r.query for r in lookups] == [{"name": TEMPLATE}]
    assert _endpoints(run.controller.requests) == ["config", "unified_job_templates", "launch", "jobs"]

    (job,) = run.controller.wait_for_jobs(1, timeout=30)
    assert job.status == "successful", run.detail()
    assert job.limit == "", "the template does not prompt for a limit: the play runs on localhost"
    assert job.extra_vars == {**chosen.extra_vars, "decision_ids": [decision["id"]]}

    sent = "\n".join(run.controller.recorded_text())
    assert run.namespace not in sent, "a name from the event reached the controller"
    for text in attacks:
        assert text not in sent
    assert not list(markers.iterdir()), "attack text ran"
    if attacks:  # the alert that acted, its text kept as data in the journal, verbatim
        kept = decision["snapshot"]["alert"]
        assert (decision["fingerprint"], kept["annotations"]["summary"], kept["labels"]["attack"]) == (
            "c7100000000000aa",
            attacks[0],
            attacks[4],
        )


def _endpoints(requests: list[Request]) -> list[str]:
    """The distinct endpoints called, in order of first call (``launch`` for any template's launch)."""
    seen: list[str] = []
    for request in requests:
        name = "launch" if request.path.endswith("/launch/") else request.path.rstrip("/").rsplit("/", 1)[-1]
        if name not in seen:
            seen.append(name)
    return seen


def test_the_environments_carry_psycopg_in_the_versions_the_tests_run() -> None:
    """The job and the activation reach the shared journal: both images get psycopg and its pool through the
    collection (ansible-builder reads meta/execution-environment.yml of each collection it installs)."""
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text())
    wanted = [
        Requirement(line.split("#")[0])
        for line in (ROOT / meta["dependencies"]["python"]).read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    named = {r.name: r for r in wanted}
    assert "binary" in named["psycopg"].extras and "psycopg-pool" in named
    pinned: dict[str, str] = {}  # what the virtualenv the tests run in holds (requirements.txt pins ==)
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        text = line.split("#")[0].strip()
        if text and not text.startswith("-"):
            pin = Requirement(text)
            if pin.name in named and str(pin.specifier).startswith("=="):
                pinned[pin.name] = str(pin.specifier)[2:]
    for name in ("psycopg", "psycopg-pool"):
        assert named[name].specifier.contains(pinned[name]), f"{name} {pinned[name]} (tested) vs {named[name]}"
    for image in ("execution-environment.yml", "decision-environment.yml"):
        spec = yaml.safe_load((ROOT / image).read_text())
        (collection,) = spec["dependencies"]["galaxy"]["collections"]
        assert collection["name"].endswith(".tar.gz") and collection["type"] == "file", image

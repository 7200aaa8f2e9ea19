"""The controller stand-in answers ansible-rulebook's own client (its JobTemplateRunner) the way the controller does.

The client is ansible-rulebook's, from the virtualenv, so the endpoints and shapes are the ones it really uses.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_rulebook.exception import ControllerApiException, JobTemplateNotFoundException
from ansible_rulebook.job_template_runner import JobTemplateRunner

from sandbox.controller import Controller, JobTemplate, Request

TOKEN = "t0ken-for-the-stand-in"


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[Controller]:
    templates = [
        JobTemplate("selfheal-remediate", organization="SelfHeal", extra_vars={"journal": "postgresql://x@db/j"}),
        JobTemplate("selfheal-remediate", organization="Other"),
        JobTemplate("no-prompts", ask_variables_on_launch=False),
        JobTemplate("labelled", ask_labels_on_launch=True, ask_limit_on_launch=True),
        JobTemplate("surveyed", ask_variables_on_launch=False, survey=("decision_id",), extra_vars={"journal": "j"}),
    ]
    with Controller(templates, token=TOKEN, run_dir=tmp_path) as running:
        yield running


def runner(controller: Controller, url: str | None = None, token: str = TOKEN) -> JobTemplateRunner:
    made = JobTemplateRunner(token=token)
    made.host = url or controller.url  # set as the CLI sets it (the constructor resets the gateway's paths)
    made.refresh_delay = 0.05
    return made


async def test_a_launch_is_found_by_name_and_organization_run_and_polled_to_its_end(controller: Controller) -> None:
    client = runner(controller)
    try:
        assert (await client.get_config())["version"]
        job = await client.run_job_template(
            "selfheal-remediate", "SelfHeal", {"extra_vars": {"decision_id": 7}, "limit": "all"}
        )
    finally:
        await client.close_session()
    assert job["status"] == "successful"
    (launch,) = controller.launches()
    assert launch.path == "/api/v2/job_templates/1/launch/", "the SelfHeal one, not Other's of the same name"
    assert launch.json() == {"extra_vars": {"decision_id": 7}, "limit": "all"}
    assert launch.headers["authorization"] == f"Bearer {TOKEN}"
    (ran,) = controller.jobs.values()
    # The template's own variables under the launch's; the limit dropped: the template does not prompt for it.
    assert ran.extra_vars == {"journal": "postgresql://x@db/j", "decision_id": 7}
    assert ran.limit == ""
    assert [r.path for r in controller.requests] == [
        "/api/v2/config/",
        "/api/v2/unified_job_templates/",
        "/api/v2/job_templates/1/launch/",
        "/api/v2/jobs/",
    ]
    assert controller.requests[-1].query == {"id__in": "1", "page_size": "1"}


async def test_behind_a_gateway_the_same_api_answers_under_api_controller(controller: Controller) -> None:
    client = runner(controller, url=controller.url + "/api/controller/")
    try:
        job = await client.run_job_template("no-prompts", "Default", {"extra_vars": {"decision_id": 1}})
    finally:
        await client.close_session()
    assert job["status"] == "successful"
    assert controller.launches()[0].path == "/api/controller/v2/job_templates/3/launch/"
    assert controller.jobs[1].extra_vars == {}, "a template that does not prompt for variables ignores them"


async def test_a_survey_lets_its_variables_through_and_drops_the_rest(controller: Controller) -> None:
    client = runner(controller)
    try:
        extra_vars = {"decision_id": 9, "journal": "/tmp/elsewhere.db", "ansible_eda": {"event": {}}}
        job = await client.run_job_template("surveyed", "Default", {"extra_vars": extra_vars})
    finally:
        await client.close_session()
    assert job["status"] == "successful"
    assert controller.jobs[1].extra_vars == {"journal": "j", "decision_id": 9}


async def test_labels_are_created_once_in_the_organization_when_the_template_prompts_for_them(
    controller: Controller,
) -> None:
    client = runner(controller)
    try:
        for _ in range(2):
            await client.run_job_template("labelled", "Default", {"limit": "localhost"}, ["selfheal"])
    finally:
        await client.close_session()
    assert {name for name in controller.labels} >= {"selfheal"}
    assert controller.jobs[1].labels and controller.jobs[1].labels == controller.jobs[2].labels
    assert controller.jobs[1].limit == "localhost"


async def test_an_unknown_template_a_wrong_organization_and_a_wrong_token_are_refused(controller: Controller) -> None:
    client = runner(controller)
    try:
        with pytest.raises(JobTemplateNotFoundException):
            await client.launch_job_template("selfheal-remediate", "Default", {})
        with pytest.raises(JobTemplateNotFoundException):
            await client.launch_job_template("nope", "SelfHeal", {})
    finally:
        await client.close_session()
    wrong = runner(controller, token="wrong")
    wrong._create_session()
    try:
        with pytest.raises(ControllerApiException, match="401"):
            await wrong._get_page_no_retry("api/v2/config/", {})
    finally:
        await wrong.close_session()
    assert not controller.launches() and not controller.jobs


def test_a_template_with_a_playbook_runs_it_with_its_variables_and_its_credentials_environment(
    tmp_path: Path,
) -> None:
    playbook = tmp_path / "write.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        "    - name: Write what the job was given\n"
        "      ansible.builtin.copy:\n"
        '        dest: "{{ out }}"\n'
        "        content: \"{{ decision_id }} {{ lookup('ansible.builtin.env', 'PGPASSFILE') }}\"\n"
        "        mode: '0600'\n"
    )
    out = tmp_path / "out.txt"
    template = JobTemplate(
        "write",
        playbook=str(playbook),
        extra_vars={"out": str(out)},
        env={"PGPASSFILE": "/secret/pgpass", "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
    )
    with Controller([template], token=TOKEN, run_dir=tmp_path / "ctl") as controller:
        status, body = controller.answer(_launch_request(template.id, b'{"extra_vars": {"decision_id": 42}}'))
        assert status == 201 and body["ignored_fields"] == {}
        (job,) = controller.wait_for_jobs(1, timeout=60)
    assert job.status == "successful", job.log.read_text() if job.log else ""
    assert out.read_text() == "42 /secret/pgpass"


def _launch_request(template_id: int, body: bytes) -> Request:
    return Request(
        "POST", f"/api/v2/job_templates/{template_id}/launch/", {}, {"authorization": f"Bearer {TOKEN}"}, body
    )

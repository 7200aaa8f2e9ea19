"""A stand-in for the automation controller's job-launch API: what ansible-rulebook's ``run_job_template`` calls.

No automation controller runs here, so the sandbox serves the part of its REST API (``/api/v2/``, or
``/api/controller/v2/`` behind a platform gateway) that ansible-rulebook 1.x uses, read from its
``job_template_runner.py`` and ``shared_job_monitor.py``:

- ``GET config/`` at start (ansible-rulebook logs the version and refuses to start when it fails);
- ``GET unified_job_templates/?name=NAME`` to find the template by name and organization
  (``summary_fields.organization.name``), its ``related.launch`` URL and its ``ask_*_on_launch`` flags;
- ``GET organizations/?name=`` and ``GET``/``POST labels/`` when the template prompts for labels;
- ``POST job_templates/ID/launch/`` with ``{"extra_vars": {...}, "limit": "..."}``, answered 201 with the job's
  ``url``; what the template does not prompt for is dropped and named in ``ignored_fields``, as the controller does;
- ``GET jobs/?id__in=1,2&page_size=2`` to poll the jobs until ``successful``, ``failed``, ``error`` or ``canceled``;
- ``GET job_templates/ID/jobs/?labels__name=`` (a restarted, persistent ansible-rulebook looking for its job).

Every request is recorded (method, path, query, headers, body) for the tests. A template given a ``playbook``
runs it when launched, as the controller's job would in its execution environment: ``ansible-playbook`` with the
template's variables under the launch's, and the environment its credentials inject (``env``). Without one the
job succeeds at once. Nothing in the collection knows it talks to this.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

VERSION = "4.6.9"
DONE = ("successful", "failed", "error", "canceled")


@dataclass
class JobTemplate:
    """A job template as the controller keeps it; the ``ask_*`` flags are its "Prompt on launch" boxes."""

    name: str
    organization: str = "Default"
    playbook: str | None = None  # run when launched; None: the job succeeds without running anything
    extra_vars: dict[str, Any] = field(default_factory=dict)  # the template's Variables (or its survey's answers)
    env: dict[str, str] = field(default_factory=dict)  # what the template's credentials inject into the job
    inventory: Path | None = None
    ask_variables_on_launch: bool = True
    ask_limit_on_launch: bool = False
    ask_inventory_on_launch: bool = False
    ask_labels_on_launch: bool = False
    survey: tuple[str, ...] = ()  # the variables of the survey's questions (an enabled survey accepts them)
    id: int = 0


@dataclass
class Job:
    id: int
    template: JobTemplate
    extra_vars: dict[str, Any]
    limit: str
    labels: list[int]
    status: str = "pending"
    created: str = ""
    finished: str | None = None
    log: Path | None = None
    returncode: int | None = None


@dataclass
class Request:
    """One request the stand-in received, as it came."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Controller:
    """The stand-in, on a free loopback port; use as a context manager (``url``, ``token``, ``requests``)."""

    def __init__(
        self, templates: list[JobTemplate], *, token: str, run_dir: Path, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.templates = {i: t for i, t in enumerate(templates, start=1)}
        for template_id, template in self.templates.items():
            template.id = template_id
        self.organizations = {name: i for i, name in enumerate(sorted({t.organization for t in templates}), 1)}
        self.token = token
        self.run_dir = Path(run_dir)
        self.requests: list[Request] = []
        self.jobs: dict[int, Job] = {}
        self.labels: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._serving = threading.Thread(target=self._server.serve_forever, name="controller", daemon=True)

    # --- life cycle --------------------------------------------------------------------------------------------

    def __enter__(self) -> Controller:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._serving.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and end every job still running (its whole process group)."""
        self._server.shutdown()
        self._server.server_close()
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for thread in self._threads:
            thread.join(timeout=10)

    # --- what the tests read -----------------------------------------------------------------------------------

    def launches(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith("/launch/")]

    def recorded_text(self) -> list[str]:
        """The text of every request received (path, query, headers, body): what a leak check searches."""
        with self._lock:
            recorded = list(self.requests)
        meta = [json.dumps({"path": r.path, "query": r.query, "headers": r.headers}) for r in recorded]
        return meta + [r.body.decode(errors="replace") for r in recorded]

    def wait_for_jobs(self, count: int, timeout: float) -> list[Job]:
        """The first ``count`` jobs once each has ended (TimeoutError naming their states otherwise)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                jobs = [self.jobs[i] for i in sorted(self.jobs)][:count]
            if len(jobs) == count and all(j.status in DONE for j in jobs):
                return jobs
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs not done within {timeout:g}s: {[(j.id, j.status) for j in jobs]}")
            time.sleep(0.2)

    # --- the API -----------------------------------------------------------------------------------------------

    def answer(self, request: Request) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(request)
        if not self._authorized(request.headers.get("authorization", "")):
            return 401, {"detail": "Authentication credentials were not provided."}
        # /api/v2/... (the controller) or /api/controller/v2/... (the platform gateway): route on what follows v2/.
        head, sep, rest = request.path.partition("/v2/")
        if not sep or head not in ("/api", "/api/controller"):
            return 404, {"detail": "Not found."}
        parts = [p for p in rest.split("/") if p]
        route = (request.method, *parts[:1], *(["ID"] if len(parts) > 1 else []), *parts[2:])
        try:
            return self._route(route, parts, request, head + sep)
        except (KeyError, ValueError) as exc:
            return 400, {"detail": f"bad request: {exc}"}

    def _route(self, route: tuple[str, ...], parts: list[str], request: Request, api: str) -> tuple[int, Any]:
        query = request.query
        if route == ("GET", "config"):
            return 200, {"version": VERSION, "ansible_version": "2.19", "license_info": {"license_type": "enterprise"}}
        if route == ("GET", "unified_job_templates"):
            found = [
                self._template_view(t, api) for t in self.templates.values() if t.name == query.get("name", t.name)
            ]
            return 200, _page(found)
        if route == ("GET", "organizations"):
            wanted = query.get("name")
            orgs = [{"id": i, "name": n} for n, i in self.organizations.items() if wanted in (None, n)]
            return 200, _page(orgs)
        if route == ("GET", "labels"):
            with self._lock:
                return 200, _page([v for n, v in self.labels.items() if query.get("name", n) == n])
        if route == ("POST", "labels"):
            return self._create_label(request.json() or {})
        if route == ("POST", "job_templates", "ID", "launch"):
            template = self.templates.get(int(parts[1]))
            if template is None:
                return 404, {"detail": "Not found."}
            return self._launch(template, request.json() or {}, api)
        if route == ("GET", "jobs"):
            ids = {int(i) for i in query["id__in"].split(",")} if "id__in" in query else None
            with self._lock:
                found = [self._job_view(j, api) for j in self.jobs.values() if ids is None or j.id in ids]
            return 200, _page(found)
        if route == ("GET", "jobs", "ID"):
            with self._lock:
                job = self.jobs.get(int(parts[1]))
                return (200, self._job_view(job, api)) if job else (404, {"detail": "Not found."})
        if route == ("GET", "job_templates", "ID", "jobs"):
            wanted = query.get("labels__name")
            with self._lock:
                names = {v["id"]: n for n, v in self.labels.items()}
                found = [
                    self._job_view(j, api)
                    for j in self.jobs.values()
                    if j.template.id == int(parts[1]) and (wanted is None or wanted in {names[i] for i in j.labels})
                ]
            return 200, _page(found)
        return 404, {"detail": "Not found."}

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value == self.token
        if scheme.lower() == "basic":
            return base64.b64decode(value).decode(errors="replace").partition(":")[2] == self.token
        return False

    def _template_view(self, template: JobTemplate, api: str) -> dict[str, Any]:
        return {
            "id": template.id,
            "type": "job_template",
            "name": template.name,
            "url": f"{api}job_templates/{template.id}/",
            "related": {"launch": f"{api}job_templates/{template.id}/launch/"},
            "summary_fields": {
                "organization": {"id": self.organizations[template.organization], "name": template.organization}
            },
            "ask_variables_on_launch": template.ask_variables_on_launch,
            "ask_limit_on_launch": template.ask_limit_on_launch,
            "ask_inventory_on_launch": template.ask_inventory_on_launch,
            "ask_labels_on_launch": template.ask_labels_on_launch,
        }

    def _create_label(self, body: dict[str, Any]) -> tuple[int, Any]:
        name, organization = str(body["name"]), int(body["organization"])
        with self._lock:
            if name in self.labels:
                return 400, {"__all__": ["Label with this Name and Organization already exists."]}
            self.labels[name] = {"id": len(self.labels) + 1, "name": name, "organization": organization}
            return 201, self.labels[name]

    def _launch(self, template: JobTemplate, body: dict[str, Any], api: str) -> tuple[int, Any]:
        # What the template does not prompt for is dropped, and said so, as the controller does.
        prompts = {
            "extra_vars": template.ask_variables_on_launch or bool(template.survey),
            "limit": template.ask_limit_on_launch,
            "inventory": template.ask_inventory_on_launch,
            "labels": template.ask_labels_on_launch,
        }
        ignored = {k: v for k, v in body.items() if not prompts.get(k, False)}
        given = {k: v for k, v in body.items() if k not in ignored}
        launch_vars = given.get("extra_vars") or {}
        if isinstance(launch_vars, str):
            launch_vars = json.loads(launch_vars)
        if not template.ask_variables_on_launch and launch_vars:
            # A survey without "Prompt on launch" for variables: its questions' variables pass, the rest are dropped.
            dropped = {k: v for k, v in launch_vars.items() if k not in template.survey}
            launch_vars = {k: v for k, v in launch_vars.items() if k in template.survey}
            if dropped:
                ignored["extra_vars"] = dropped
        with self._lock:
            job = Job(
                id=len(self.jobs) + 1,
                template=template,
                extra_vars={**template.extra_vars, **launch_vars},
                limit=str(given.get("limit") or ""),
                labels=[int(i) for i in given.get("labels") or []],
                created=_now(),
            )
            self.jobs[job.id] = job
        thread = threading.Thread(target=self._run, args=(job,), name=f"job-{job.id}", daemon=True)
        self._threads.append(thread)
        thread.start()
        view = self._job_view(job, api)
        return 201, {**view, "job": job.id, "ignored_fields": ignored}

    def _job_view(self, job: Job, api: str) -> dict[str, Any]:
        return {
            "id": job.id,
            "type": "job",
            "url": f"{api}jobs/{job.id}/",
            "name": job.template.name,
            "job_template": job.template.id,
            "status": job.status,
            "failed": job.status in ("failed", "error"),
            "created": job.created,
            "finished": job.finished,
            "limit": job.limit,
            "extra_vars": json.dumps(job.extra_vars),
            "artifacts": {},
        }

    # --- the job -----------------------------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        """Run the template's playbook as the controller's job would: its variables, its credentials' env."""
        status = "successful"
        try:
            if job.template.playbook is not None:
                with self._lock:
                    job.status = "running"
                status = self._run_playbook(job)
        except Exception as exc:  # noqa: BLE001 - a job that cannot start is an error job, as on the controller
            status = "error"
            (self.run_dir / f"job-{job.id}.error").write_text(f"{type(exc).__name__}: {exc}\n")
        with self._lock:
            job.status, job.finished = status, _now()

    def _run_playbook(self, job: Job) -> str:
        work = self.run_dir / f"job-{job.id}"
        work.mkdir(parents=True, exist_ok=True)
        variables = work / "extra_vars.json"
        variables.write_text(json.dumps(job.extra_vars))
        variables.chmod(0o600)
        argv = [str(Path(sys.executable).parent / "ansible-playbook"), str(job.template.playbook)]
        if job.template.inventory is not None:
            argv += ["-i", str(job.template.inventory)]
        if job.limit:
            argv += ["--limit", job.limit]
        argv += ["-e", f"@{variables}"]
        job.log = work / "stdout.txt"
        # A job starts in a fresh container: none of this process's libpq settings reach it, only what its
        # credentials inject.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env = {**inherited, "ANSIBLE_LOCAL_TEMP": str(work / "tmp"), **job.template.env}
        with job.log.open("wb") as out:
            proc = subprocess.Popen(
                argv, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            self._procs.append(proc)
            job.returncode = proc.wait()
        return "successful" if job.returncode == 0 else "failed"


def _page(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(results), "next": None, "previous": None, "results": results}


def _handler(controller: Controller) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command,
                path=split.path,
                query=dict(parse_qsl(split.query)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            status, payload = controller.answer(request)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve  # noqa: N815 - http.server's naming

        def log_message(self, *args: Any) -> None:
            pass

    return Handler

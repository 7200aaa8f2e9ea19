"""The journal's two backends for the tests that run against both: ``journal_backend`` is an SQLite file or a
fresh database on a real PostgreSQL server (the sandbox's launcher, started once per session)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.zerotouch.selfheal.tests.unit.journal_backends import JournalBackend

from sandbox import postgres


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[postgres.Postgres]:
    server = postgres.start_postgres(tmp_path_factory.mktemp("postgres"))
    previous = os.environ.get("PGPASSFILE")
    os.environ["PGPASSFILE"] = str(server.passfile)  # how every journal in the tests gets its password
    try:
        yield server
    finally:
        if previous is None:
            os.environ.pop("PGPASSFILE", None)
        else:
            os.environ["PGPASSFILE"] = previous
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JournalBackend]:
    if request.param == "sqlite":
        yield JournalBackend("sqlite", str(tmp_path / "state" / "journal.db"))
        return
    server: postgres.Postgres = request.getfixturevalue("postgres_server")
    name = f"journal_{uuid.uuid4().hex[:12]}"
    backend = JournalBackend("postgresql", server.create_database(name))
    try:
        yield backend
    finally:
        from ansible_collections.zerotouch.selfheal.plugins.module_utils._journal.postgres import close_pools

        close_pools()
        server.drop_database(name)

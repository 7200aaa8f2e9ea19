"""A real PostgreSQL server (Debian's ``postgresql`` package) for the journal, on a free loopback port.

``start_postgres(run_dir)`` runs ``initdb`` into a fresh data directory, starts ``postgres -D <dir>`` listening on
127.0.0.1 (and on a unix socket beside the data), and creates the collection's role and database with a generated
password. The password is written to a libpq password file (``PGPASSFILE``, mode 0600) and nowhere else: the DSN
that callers pass around names host, port, role and database, never the password.

PostgreSQL refuses to run as root: when the sandbox runs as root, the server runs as the ``postgres`` system user
(created by the Debian package), in a directory that user owns. That is ``<run_dir>/postgres`` when the user can
reach it, else a private directory under the system's temporary directory (pytest's ``tmp_path`` is mode 0700).
The server gets SIGINT (a fast shutdown: open sessions are cut) on :meth:`Postgres.stop` and when the supervisor
dies, and the data directory is removed on stop: each sandbox run starts with an empty journal database.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from sandbox import procs

ROLE = "selfheal"
DATABASE = "selfheal"
SUPERUSER = "postgres"
SERVER_USER = "postgres"
PASSFILE = "postgres.pgpass"


def bin_dir() -> Path:
    """The newest installed server's binaries (Debian: /usr/lib/postgresql/<version>/bin)."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres") if p.parent.parent.name.isdigit()]
    if found:
        return max(found, key=lambda p: int(p.parent.name))
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError("PostgreSQL is not installed: run 'make setup' (apt package postgresql)")


def _server_user() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise RuntimeError(
            f"PostgreSQL will not run as root and there is no {SERVER_USER!r} user: install the postgresql package"
        ) from None


def _reachable(path: Path, user: pwd.struct_passwd) -> bool:
    """Can `user` traverse every directory down to `path` (and write into `path`)?"""
    if user.pw_uid == os.geteuid():
        return True
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for directory in [path, *path.parents]:
        st = os.stat(directory)
        need = stat.S_IXUSR | (stat.S_IWUSR if directory == path else 0)
        shift = 0 if st.st_uid == user.pw_uid else 3 if st.st_gid in groups else 6
        if st.st_mode & (need >> shift) != need >> shift:
            return False
    return True


@dataclass
class Postgres:
    """A running server: its address, the collection's DSN (no password) and the password file that goes with it."""

    proc: subprocess.Popen
    host: str
    port: int
    socket_dir: Path
    passfile: Path
    log: Path
    base: Path
    _superuser_password: str = field(repr=False)

    @property
    def dsn(self) -> str:
        return self.dsn_for(DATABASE)

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{ROLE}@{self.host}:{self.port}/{database}"

    def env(self) -> dict[str, str]:
        """What a client needs in its environment besides the DSN."""
        return {"PGPASSFILE": str(self.passfile)}

    def _admin(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=SUPERUSER,
            dbname=database,
            password=self._superuser_password,
            autocommit=True,
            connect_timeout=10,
        )

    def create_database(self, name: str) -> str:
        """A new, empty database owned by the collection's role (tests take one each); return its DSN."""
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(ROLE)))
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def backend_pids(self) -> list[int]:
        """The postmaster and every process it started (background workers, sessions)."""
        found = [self.proc.pid]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                found.append(int(entry.name))
        return found

    def stop(self, grace: float = 10.0) -> None:
        """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL; remove the data directory."""
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
        self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)
        self.passfile.unlink(missing_ok=True)


def _run_as(argv: list[str], user: pwd.struct_passwd, log: Path) -> None:
    with open(log, "ab") as out:
        done = subprocess.run(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
            check=False,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{Path(argv[0]).name} failed with {done.returncode}:\n{tail}")


def _base_dir(run_dir: Path, user: pwd.struct_passwd) -> Path:
    if _reachable(run_dir, user):
        base = run_dir / "postgres"
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(mode=0o700)
    else:
        base = Path(tempfile.mkdtemp(prefix="selfheal-postgres-"))
    os.chown(base, user.pw_uid, user.pw_gid)
    return base


def _wait_ready(pg: Postgres, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if pg.proc.poll() is not None:
            tail = pg.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"postgres exited with {pg.proc.returncode} before it was ready:\n{tail}")
        try:
            pg._admin().close()
            return
        except psycopg.OperationalError as exc:
            last = str(exc).strip()
        time.sleep(0.1)
    raise TimeoutError(f"postgres on {pg.host}:{pg.port} not ready after {timeout:.0f}s ({last})")


def start_postgres(run_dir: Path, timeout: float = 60.0) -> Postgres:
    """initdb, start the server, create the collection's role and database; return the running server."""
    binaries = bin_dir()
    user = _server_user()
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "logs" / "postgres.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    base = _base_dir(run_dir, user)
    try:
        data, socket_dir = base / "data", base / "socket"
        superuser_password = secrets.token_urlsafe(24)
        pwfile = base / "initdb.pw"
        pwfile.write_text(superuser_password + "\n")
        os.chown(pwfile, user.pw_uid, user.pw_gid)
        pwfile.chmod(0o600)
        _run_as(
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            user,
            log,
        )
        pwfile.unlink()
        socket_dir.mkdir(mode=0o700)
        os.chown(socket_dir, user.pw_uid, user.pw_gid)
        port = procs.free_port()
        proc = procs.spawn(
            [
                str(binaries / "postgres"),
                "-D",
                str(data),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"port={port}",
                "-c",
                f"unix_socket_directories={socket_dir}",
                "-c",
                "logging_collector=off",
                "-c",
                "log_min_messages=warning",
            ],
            log,
            cwd=base,
            user=user.pw_uid,
            group=user.pw_gid,
            death_signal=signal.SIGINT,
        )
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    pg = Postgres(proc, "127.0.0.1", port, socket_dir, run_dir / PASSFILE, log, base, superuser_password)
    try:
        _wait_ready(pg, timeout)
        password = secrets.token_urlsafe(24)
        with pg._admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(password))
            )
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), sql.Identifier(ROLE)))
        _write_passfile(pg.passfile, [(pg.host, port), ("localhost", port), (str(socket_dir), port)], password)
    except BaseException:
        pg.stop()
        raise
    return pg


def _write_passfile(path: Path, places: list[tuple[str, int]], password: str) -> None:
    """A libpq password file for the collection's role on any database of this server (mode 0600, or libpq
    ignores it)."""
    lines = "".join(f"{host}:{port}:*:{ROLE}:{password}\n" for host, port in places)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(lines)
    tmp.replace(path)

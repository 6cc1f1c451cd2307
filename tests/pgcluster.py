"""PostgreSQL for tests that need more than the shared test database:

- ``private_database``: a fresh database of the test's own on the shared server, for tests
  whose processes must not meet another test's rows;
- ``Cluster``: a private PostgreSQL server (initdb, pg_ctl) that a test may restart or stop
  without disturbing anyone else's run on the shared server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, unavailable
from tests.live import free_port


@contextmanager
def private_database(prefix: str) -> Iterator[str]:
    """A new, empty database on the shared server; dropped afterwards. Its URL."""
    name = f"{prefix}_{os.getpid()}"
    admin_url = make_url(PG_URL).render_as_string(hide_password=False)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure to reach the server means "unavailable"
        unavailable("PostgreSQL", f"{PG_URL}: {str(exc).splitlines()[0]}")
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parts)
    env_bin = shutil.which("pg_ctl")
    if found:
        return found[-1].parent
    if env_bin and shutil.which("initdb"):
        return Path(env_bin).parent
    unavailable("PostgreSQL cluster binaries", "no initdb/pg_ctl under /usr/lib/postgresql")
    raise AssertionError("unreachable")


class Cluster:
    """A throwaway PostgreSQL server on a free loopback port, trust authentication.

    initdb and the server refuse to run as root, so as root they run as the ``postgres``
    OS user, in a directory that user owns."""

    def __init__(self) -> None:
        self.bin = _binaries()
        self._as: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("PostgreSQL cluster binaries", "running as root, no postgres user")
            runuser = shutil.which("runuser")
            if runuser is None:
                unavailable("PostgreSQL cluster binaries", "running as root, no runuser")
            self._as = [str(runuser), "-u", "postgres", "--"]
        # Not under pytest's tmp_path: its parents are private to root.
        self.home = Path(tempfile.mkdtemp(prefix="promocodes-pg-"))
        if owner is not None:
            os.chown(self.home, owner.pw_uid, owner.pw_gid)
        self.data = self.home / "data"
        self.log = self.home / "server.log"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as, str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.home,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr}{self.logs()}")

    def logs(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.home} -c fsync=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)


@contextmanager
def cluster() -> Iterator[Cluster]:
    """A started private cluster; when it cannot be set up at all (no binaries, no
    postgres user, initdb refused), the test is reported unavailable."""
    c = Cluster()
    try:
        try:
            c.init()
            c.start()
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            unavailable("PostgreSQL cluster binaries", str(exc).splitlines()[0])
        yield c
    finally:
        c.destroy()

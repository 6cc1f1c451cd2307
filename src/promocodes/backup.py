"""``promocodes db backup``: a consistent copy of the embedded SQLite database, taken while
the server and workers keep running.

SQLite's online backup API copies the pages inside one read transaction; in WAL mode that
read sees one committed state and does not block writers, so the copy is exactly the
database as of one commit however busy it is. PostgreSQL has its own tools (``pg_dump``).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url

from promocodes.errors import DomainError


def backup_sqlite(database_url: str, target: Path) -> int:
    """Copy the SQLite database at ``database_url`` to ``target``; returns its pages."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise DomainError(
            f"db backup copies the embedded SQLite database; this is {url.get_backend_name()}: "
            "back it up with pg_dump (e.g. pg_dump -Fc -f promocodes.dump DBNAME) or your "
            "PostgreSQL service's snapshots"
        )
    source = url.database
    if not source or source == ":memory:" or not Path(source).exists():
        raise DomainError(f"no SQLite database file at {source!r}")
    if target.exists():
        raise DomainError(f"{target} already exists; choose a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with (
            closing(sqlite3.connect(source, timeout=30)) as src,
            closing(sqlite3.connect(partial)) as dst,
        ):
            # All pages in one step: one read snapshot. Copying in steps would restart
            # whenever another connection commits, and might never finish on a busy server.
            src.backup(dst, pages=-1)
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
            ok = dst.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            raise DomainError(f"the copy failed its integrity check: {ok}")
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    return pages

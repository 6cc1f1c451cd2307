"""Large uploads run in a background thread of the API process.

The upload is recorded as ``running`` (committed) first so clients can poll it; the codes,
counters, report and ``done`` then commit together in one transaction, exactly as a
foreground upload. Line progress is kept in this process's memory: a poll answered by
another API process sees ``running`` without the line count.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from promocodes.audit.service import Actor
from promocodes.codes.importer import CodeReader
from promocodes.codes.models import Upload
from promocodes.codes.service import get_group
from promocodes.codes.uploads import get_upload, upload_codes
from promocodes.db import Database

_progress: dict[int, int] = {}


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def progress(upload_id: int) -> int | None:
    """Lines processed so far by a background upload running in this process."""
    return _progress.get(upload_id)


def start_upload(
    db: Database,
    group_id: int,
    path: Path,
    *,
    fmt: str | None,
    filename: str | None,
    source: str,
    actor: Actor,
) -> int:
    """Record the upload as running and process ``path`` (then delete it) in a thread."""
    with db.write() as session:
        get_group(session, group_id)
        upload = Upload(
            group_id=group_id,
            source=source,
            actor=actor.name,
            filename=filename,
            status="running",
            owner=owner(),
        )
        session.add(upload)
        session.flush()
        upload_id = upload.id
    _progress[upload_id] = 0
    thread = threading.Thread(
        target=_run,
        args=(db, upload_id, group_id, path, fmt, filename, source, actor),
        name=f"upload-{upload_id}",
        daemon=True,
    )
    thread.start()
    return upload_id


def _run(
    db: Database,
    upload_id: int,
    group_id: int,
    path: Path,
    fmt: str | None,
    filename: str | None,
    source: str,
    actor: Actor,
) -> None:
    try:
        with path.open("rb") as stream, db.write() as session:
            upload_codes(
                session,
                group_id,
                CodeReader(stream, fmt=fmt, filename=filename),
                source=source,
                actor=actor,
                upload_id=upload_id,
                progress=lambda r: _progress.__setitem__(upload_id, r.received),
            )
    except Exception as exc:  # recorded on the upload: the client polls for it
        with db.write() as session:
            upload = get_upload(session, upload_id)
            upload.status = "failed"
            upload.error = f"{type(exc).__name__}: {exc}"[:1000]
    finally:
        _progress.pop(upload_id, None)
        with contextlib.suppress(OSError):
            path.unlink()


def fail_interrupted(session: Session) -> int:
    """Mark as failed the running uploads of dead processes on this host (a restart
    interrupted them; their transaction rolled back, so nothing of them was written)."""
    host = socket.gethostname()
    count = 0
    for upload in session.scalars(select(Upload).where(Upload.status == "running")):
        name, _, pid = (upload.owner or "").rpartition(":")
        if name != host or not pid.isdigit() or _alive(int(pid)):
            continue
        upload.status = "failed"
        upload.error = "interrupted: the process running it stopped; nothing was written"
        count += 1
    return count


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

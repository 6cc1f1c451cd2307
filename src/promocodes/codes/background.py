"""Uploading a received file: now, or in a background thread of the API process when it
is large. The API and the web UI hand every uploaded file to ``receive``, so both decide
the same way (format, foreground or background) and both take the same path.

A background upload is recorded as ``running`` (committed) first so clients can poll it;
the codes, counters, report and ``done`` then commit together in one transaction, exactly
as a foreground upload. Line progress is kept in this process's memory: a poll answered
by another API process sees ``running`` without the line count.

This module runs work, so it opens its own transactions (as the faces and the worker do).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from promocodes import spool
from promocodes.audit.service import Actor
from promocodes.codes import service, uploads
from promocodes.codes.code_text import ImportItem
from promocodes.codes.importer import CodeReader, Reader, format_of
from promocodes.codes.json_codes import read_json
from promocodes.codes.schemas import UploadReport
from promocodes.codes.sniff import charset_of, read_head
from promocodes.config import Settings
from promocodes.db import Database

_progress: dict[int, int] = {}


def progress(upload_id: int) -> int | None:
    """Lines processed so far by a background upload running in this process."""
    return _progress.get(upload_id)


@dataclass(frozen=True, slots=True)
class Started:
    """The upload goes on in the background: poll ``upload_id``."""

    upload_id: int


@dataclass(frozen=True, slots=True)
class Received:
    """An uploaded file, spooled to ``path`` (``receive`` removes it when done)."""

    path: Path
    filename: str | None
    content_type: str | None


def receive(
    db: Database,
    settings: Settings,
    group_id: int,
    file: Received,
    *,
    source: str,
    actor: Actor,
    dry_run: bool = False,
) -> UploadReport | Started:
    """Upload ``file`` into the group. Larger than ``upload_background_bytes``, it runs
    in the background and this returns at once; a dry run never does (its report is the
    answer)."""
    fmt = format_of(file.filename, file.content_type)
    try:
        with file.path.open("rb") as stream:
            # A file that is not text, is empty or has no code column: refused before
            # anything is recorded.
            _reader(stream, fmt, file)
    except BaseException:
        spool.remove(file.path)
        raise
    if not dry_run and file.path.stat().st_size > settings.upload_background_bytes:
        return Started(_start(db, settings, group_id, file, fmt, source, actor))
    try:
        with file.path.open("rb") as stream, db.write() as session:
            return uploads.upload_codes(
                session,
                group_id,
                _reader(stream, fmt, file),
                source=source,
                actor=actor,
                filename=file.filename,
                dry_run=dry_run,
                batch_size=settings.upload_batch_size,
                report_limit=settings.upload_report_limit,
            )
    finally:
        spool.remove(file.path)


def _reader(stream: BinaryIO, fmt: str, file: Received) -> Iterable[ImportItem] | Reader:
    return reader_of(stream, fmt, file.filename, charset_of(file.content_type))


def reader_of(
    stream: BinaryIO, fmt: str, filename: str | None, charset: str | None = None
) -> Iterable[ImportItem] | Reader:
    """The codes of an uploaded file of ``fmt`` (``importer.format_of``), for the API,
    the web UI and the CLI alike."""
    if fmt == "json":
        read_head(stream)  # not text or empty: refused at once, as other formats are
        stream.seek(0)
        return read_json(stream)
    return CodeReader(stream, fmt=fmt, filename=filename, charset=charset)


def _start(
    db: Database,
    settings: Settings,
    group_id: int,
    file: Received,
    fmt: str,
    source: str,
    actor: Actor,
) -> int:
    """Record the upload as running and process the file in a thread. The thread gets the
    file already open: whoever removes its name (the request's spool, as the request
    ends) cannot take it from under the upload, and the space is freed when it closes."""
    try:
        stream = file.path.open("rb")
    except BaseException:
        spool.remove(file.path)
        raise
    try:
        with db.write() as session:
            service.get_group(session, group_id)
            upload_id = uploads.start_running(session, group_id, source, actor, file.filename)
        _progress[upload_id] = 0
        thread = threading.Thread(
            target=_run,
            args=(db, settings, upload_id, group_id, stream, file, fmt, source, actor),
            name=f"upload-{upload_id}",
            daemon=True,
        )
        thread.start()
    except BaseException:
        # The job never started: nobody else will close or remove the file.
        stream.close()
        spool.remove(file.path)
        raise
    return upload_id


def _run(
    db: Database,
    settings: Settings,
    upload_id: int,
    group_id: int,
    stream: BinaryIO,
    file: Received,
    fmt: str,
    source: str,
    actor: Actor,
) -> None:
    try:
        with stream, db.write() as session:
            uploads.upload_codes(
                session,
                group_id,
                _reader(stream, fmt, file),
                source=source,
                actor=actor,
                upload_id=upload_id,
                batch_size=settings.upload_batch_size,
                report_limit=settings.upload_report_limit,
                progress=lambda r: _progress.__setitem__(upload_id, r.received),
            )
    except Exception as exc:  # recorded on the upload: the client polls for it
        with db.write() as session:
            uploads.fail(session, upload_id, f"{type(exc).__name__}: {exc}")
    finally:
        _progress.pop(upload_id, None)
        stream.close()
        spool.remove(file.path)

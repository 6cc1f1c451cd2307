"""Uploading codes into a group, the upload report, withdrawing a wrong upload, blocking.

An upload is one transaction: either every valid code of it is in, with the counters
and the upload record, or (on any failure) nothing is. A dry run takes the very same path
inside a savepoint that is rolled back, so its report is exactly what the real upload
would say, duplicates across batches included, and nothing is written.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session

from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.codes import code_repository as rows
from promocodes.codes import repository as repo
from promocodes.codes.batcher import Batcher
from promocodes.codes.code_text import CodeRun, ImportItem, InvalidLine
from promocodes.codes.importer import Reader
from promocodes.codes.models import CodeGroup, Upload
from promocodes.codes.report import InvalidLineOut, UploadReport
from promocodes.errors import GroupNotFound, UploadNotFound
from promocodes.models import utcnow

Progress = Callable[[UploadReport], None]

DEFAULT_BATCH = 20_000
DEFAULT_REPORT_LIMIT = 1_000


def upload_codes(
    session: Session,
    group_id: int,
    items: Iterable[ImportItem] | Reader,
    *,
    source: str,
    actor: Actor = SYSTEM,
    filename: str | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH,
    report_limit: int = DEFAULT_REPORT_LIMIT,
    progress: Progress | None = None,
    upload_id: int | None = None,
) -> UploadReport:
    """Upload codes into a group in the caller's transaction and return the report.
    ``upload_id``: an upload recorded beforehand as running (a background upload)."""
    group = repo.lock_group(session, group_id, key_share=True)
    if group is None:
        raise GroupNotFound(f"group {group_id} does not exist")
    report = UploadReport(dry_run=dry_run)
    savepoint = session.begin_nested() if dry_run else None
    if upload_id is not None:
        upload = get_upload(session, upload_id)
    else:
        upload = repo.add_upload(
            session, Upload(group_id=group.id, source=source, actor=actor.name, filename=filename)
        )
    batcher = Batcher(session, group, upload, report, report_limit)
    if isinstance(items, Reader):
        report.warnings = list(items.warnings)
    _feed(batcher, items, batch_size, progress)
    batcher.flush()
    settle(session, group, upload, report)
    if savepoint is not None:
        savepoint.rollback()
    else:
        report.upload_id = upload.id
        record_upload(session, actor, group, upload, report)
    if progress:
        progress(report)
    return report


def settle(session: Session, group: CodeGroup, upload: Upload, report: UploadReport) -> None:
    """The end of every upload (a file, a list, generated codes): counters bumped once,
    the report kept on the upload, the upload done."""
    repo.bump_counters(session, group.id, slot=0, total=report.added, available=report.added)
    for field in (
        "received",
        "added",
        "duplicates_in_upload",
        "already_in_group",
        "in_other_groups",
        "invalid_count",
    ):
        setattr(upload, field, getattr(report, field))
    upload.status = "done"
    report.duplicates.sort(key=lambda d: d.line)  # repeats of earlier batches come last
    # The lists, and the one count without a column of its own, are kept as JSON.
    kept = {"invalid", "other_groups", "duplicates", "expired", "expired_count", "warnings"}
    upload.report = report.model_dump_json(include=kept)
    session.flush()


def _feed(
    batcher: Batcher,
    items: Iterable[ImportItem] | Reader,
    batch_size: int,
    progress: Progress | None,
) -> None:
    """Every parsed item into the report or the batch; a full batch is written."""
    report = batcher.report
    pieces = items.pieces() if isinstance(items, Reader) else items
    for item in pieces:
        if isinstance(item, CodeRun):
            report.received += len(item.codes)
            done = 0
            while done < len(item.codes):
                # Batches keep their size: a run may be far longer than one batch.
                room = batch_size - len(batcher.pending)
                batcher.add_run(item.first_line + done, item.codes[done : done + room])
                done += room
                if len(batcher.pending) >= batch_size:
                    batcher.flush()
                    if progress:
                        progress(report)
            continue
        report.received += 1
        if isinstance(item, InvalidLine):
            report.invalid_count += 1
            if len(report.invalid) < batcher.limit:
                report.invalid.append(
                    InvalidLineOut(line=item.line, value=item.value, reason=item.reason)
                )
            continue
        batcher.add(item.line, item.code, item.valid_until)
        if len(batcher.pending) >= batch_size:
            batcher.flush()
            if progress:
                progress(report)


def record_upload(
    session: Session, actor: Actor, group: CodeGroup, upload: Upload, report: UploadReport
) -> None:
    details = {
        "group_id": group.id,
        "group_name": group.name,
        "source": upload.source,
        **({"pattern": upload.pattern} if upload.pattern else {}),
        **report.model_dump(
            exclude={
                "invalid",
                "other_groups",
                "duplicates",
                "expired",
                "warnings",
                "dry_run",
                "upload_id",
            }
        ),
    }
    record(session, actor, "upload.created", Target("upload", upload.id, upload.filename), details)


def report_of(upload: Upload) -> UploadReport:
    """The report of a recorded upload, as its upload call returned it."""
    listed = UploadReport.model_validate_json(upload.report) if upload.report else UploadReport()
    return listed.model_copy(
        update={
            "received": upload.received,
            "added": upload.added,
            "duplicates_in_upload": upload.duplicates_in_upload,
            "already_in_group": upload.already_in_group,
            "in_other_groups": upload.in_other_groups,
            "invalid_count": upload.invalid_count,
            "upload_id": upload.id,
        }
    )


def count(session: Session) -> int:
    """How many uploads were ever recorded."""
    return repo.count_uploads(session)


def list_uploads(session: Session, group_id: int | None, limit: int = 100) -> list[Upload]:
    """The newest uploads first (of one group, or of all)."""
    return repo.list_uploads(session, group_id, limit)


def get_upload(session: Session, upload_id: int) -> Upload:
    upload = repo.get_upload(session, upload_id)
    if upload is None:
        raise UploadNotFound(f"upload {upload_id} does not exist")
    return upload


def withdraw_upload(session: Session, upload_id: int, *, actor: Actor = SYSTEM) -> Upload:
    """Remove the still-available codes of an upload (a wrong file, a wrong group).
    Issued, redeemed and blocked codes stay: they are history. Withdrawing again
    removes nothing more and is not an error."""
    upload = get_upload(session, upload_id)
    first = upload.withdrawn_at is None
    removed = rows.withdraw_available(session, upload.group_id, upload.id)
    if removed or first:  # a repeat that removes nothing changes nothing: not recorded
        record(
            session,
            actor,
            "upload.withdrawn",
            Target("upload", upload.id, upload.filename),
            {"group_id": upload.group_id, "removed": removed},
        )
    if removed:
        repo.bump_counters(session, upload.group_id, slot=0, total=-removed, available=-removed)
    upload.withdrawn += removed
    if upload.withdrawn_at is None:
        upload.withdrawn_at = utcnow()
    session.flush()
    return upload


# --- uploads in the background ----------------------------------------------------------


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def start_running(
    session: Session, group_id: int, source: str, actor: Actor, filename: str | None
) -> int:
    """Record a background upload as running in this process (``host:pid``), so a
    client can poll it and a restart can tell it was interrupted."""
    upload = Upload(
        group_id=group_id,
        source=source,
        actor=actor.name,
        filename=filename,
        status="running",
        owner=_owner(),
    )
    return repo.add_upload(session, upload).id


def fail(session: Session, upload_id: int, error: str) -> None:
    upload = get_upload(session, upload_id)
    upload.status = "failed"
    upload.error = error[:1000]


def fail_interrupted(session: Session) -> int:
    """Mark as failed the running uploads of dead processes on this host (a restart
    interrupted them; their transaction rolled back, so nothing of them was written)."""
    host = socket.gethostname()
    count = 0
    for upload in repo.running_uploads(session):
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

"""Generated codes: N random codes of a pattern into a group, as an upload with its
report (the same batches, counters, history and audit entry as a file), and the refill
the workers run when a group with a refill setting runs low.

Uniqueness is the codes table's unique index, as for any upload: a drawn code that
exists anywhere (or twice in the draw) is skipped, counted, and drawn again, so two
generations racing into any groups can never make one code twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from promocodes.audit.service import SYSTEM, Actor, Target, record
from promocodes.codes import repository as repo
from promocodes.codes.batcher import Batcher
from promocodes.codes.models import AlertState, CodeGroup, Upload
from promocodes.codes.pattern import check_count, draw, parse
from promocodes.codes.schemas import GenerateReport, UploadReport
from promocodes.codes.uploads import DEFAULT_BATCH, record_upload, settle
from promocodes.errors import GroupNotFound
from promocodes.models import utcnow

# The alert-state kind that marks a refill episode: a group is refilled once when its
# active codes fall below the threshold, and again only after they rose back above it.
REFILL = "refill"


def generate(
    session: Session,
    group_id: int,
    pattern_text: str,
    count: int,
    *,
    source: str,
    actor: Actor = SYSTEM,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[UploadReport], None] | None = None,
) -> GenerateReport:
    """Add ``count`` new codes of the pattern to the group in the caller's transaction.
    Refused (``ValidationFailed``) for a bad pattern or a guessable count. Should the
    pattern's codes run out (other groups hold most of them), it stops after twice the
    count's draws and the report says how many it added."""
    pattern = parse(pattern_text)
    check_count(pattern, count)
    group = repo.lock_group(session, group_id, key_share=True)
    if group is None:
        raise GroupNotFound(f"group {group_id} does not exist")
    upload = repo.add_upload(
        session, Upload(group_id=group.id, source=source, actor=actor.name, pattern=pattern.text)
    )
    # No listing of collisions: they are other groups' codes, and of no use to anyone here.
    report = UploadReport()
    batcher = Batcher(session, group, upload, report, 0)
    most_draws = 2 * count + 1_000
    while report.added < count and report.received < most_draws:
        drawn = draw(pattern, min(batch_size, count - report.added))
        batcher.add_run(report.received + 1, drawn)
        report.received += len(drawn)
        batcher.flush()
        if progress:
            progress(report)
    settle(session, group, upload, report)
    report.upload_id = upload.id
    record_upload(session, actor, group, upload, report)
    return GenerateReport(
        upload_id=upload.id,
        group_id=group.id,
        pattern=pattern.text,
        requested=count,
        added=report.added,
        collisions=report.received - report.added,
    )


def refill(session: Session, now: datetime | None = None) -> list[GenerateReport]:
    """Generate more codes for each live group whose active codes fell below its refill
    threshold, once per episode (run by the workers, in one transaction)."""
    now = now or utcnow()
    groups = [g for g in repo.all_live_groups(session) if _refills(g)]
    if not groups:
        return []
    counts = repo.counts(session, [g.id for g in groups])
    held = {s.group_id: s for s in repo.alert_states(session) if s.kind == REFILL}
    done = []
    for group in groups:
        assert group.refill_below is not None and group.refill_count is not None
        active = counts[group.id].active
        state = held.get(group.id)
        if active >= group.refill_below:
            if state is not None:
                repo.remove(session, state)
            continue
        if state is not None:
            continue
        repo.add(session, AlertState(group_id=group.id, kind=REFILL, since=now))
        done.append(_refill(session, group, active))
    return done


def _refills(group: CodeGroup) -> bool:
    return bool(group.refill_pattern and group.refill_below and group.refill_count)


def _refill(session: Session, group: CodeGroup, active: int) -> GenerateReport:
    assert group.refill_pattern is not None and group.refill_count is not None
    report = generate(session, group.id, group.refill_pattern, group.refill_count, source="refill")
    record(
        session,
        SYSTEM,
        "group.refilled",
        Target("group", group.id, group.name),
        {
            "active_before": active,
            "below": group.refill_below,
            "pattern": report.pattern,
            "requested": report.requested,
            "added": report.added,
            "upload_id": report.upload_id,
        },
    )
    return report

"""Resending a mailing's failed recipients: each recipient whose latest message failed
(refused, undeliverable, a render that broke) gets a new message, rendered afresh with
new codes, as the mailing's next round. The failed messages stay as they are, their
voided codes voided; the new round is sent by the workers like the first send.

Exactly once per request: the recipients are those whose *latest* message failed, so a
second resend while one is going finds nobody new (and is refused: the mailing is
sending), and the API's idempotency key answers a retried request with its first result.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from promocodes.config import Settings
from promocodes.errors import Conflict
from promocodes.messaging import repository as repo
from promocodes.messaging.mailings import MailingNotFound, require_channel
from promocodes.messaging.models import Mailing, MailingRound
from promocodes.models import utcnow


class NothingToResend(Conflict):
    slug = "nothing-to-resend"
    title = "No failed recipients to resend"


def resend_failed(session: Session, mailing_id: int, *, settings: Settings) -> Mailing:
    """Start the next round for the recipients whose latest message failed."""
    mailing = repo.get_mailing(session, mailing_id, lock=True)
    if mailing is None:
        raise MailingNotFound(f"mailing {mailing_id} does not exist")
    if mailing.status != "sent":
        raise Conflict(
            f"mailing {mailing.name!r} is {mailing.status}: failed recipients can be resent "
            "once it has been sent"
        )
    require_channel(settings, mailing)
    after = repo.last_seq(session, mailing.id)
    added = repo.append_failed_recipients(session, mailing.id, after)
    if not added:
        raise NothingToResend(f"no recipient of mailing {mailing.name!r} has a failed message")
    round_ = repo.last_round(session, mailing.id) + 1
    now = utcnow()
    repo.add_round(session, MailingRound(
        mailing_id=mailing.id, round=round_, first_seq=after + 1, last_seq=after + added,
        created_at=now,
    ))  # fmt: skip
    repo.add_chunks(session, mailing.id, after + 1, after + added, mailing.chunk_size, round_)
    mailing.status, mailing.finished_at = "sending", None
    session.flush()
    return mailing

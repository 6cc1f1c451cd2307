"""Delivering queued messages (SMTP, webhook) from the outbox, after their commit.

At-least-once with a stable identity: the Message-ID (SMTP) and the message key (webhook)
never change between attempts, so the receiving side can drop duplicates. Failures:
- definitive refusal (SMTP 5xx, a webhook's 4xx, a channel not configured): nobody can
  have seen the code, so the message fails and its issuances are voided, codes back;
- transient (connection refused, SMTP 4xx, webhook 5xx): retried with exponential
  backoff; when the retries are exhausted the message fails and its codes go back too;
- ambiguous (the connection lost during SMTP DATA, a webhook request sent but no answer):
  retried as well, but the message is marked ``maybe_delivered`` and, if it finally
  fails, keeps its codes: they may have arrived, and a code must never reach two people.

The worker leases a batch (``lease``), sends each message outside any transaction
(``send``) and records each outcome in a short transaction of its own (``record``).
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.orm import Session

from promocodes import webhooks
from promocodes.codes import issuance
from promocodes.config import Settings
from promocodes.errors import Conflict, DomainError
from promocodes.messaging import message_repository as messages
from promocodes.messaging.models import Message
from promocodes.messaging.rendering import Rendered
from promocodes.models import utcnow

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

LEASE = timedelta(minutes=2)
log = logging.getLogger("promocodes.delivery")


def message_id(key: str, domain: str) -> str:
    return f"<{key}@{domain}>"


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | retry | refused | failed
    error: str | None = None
    # The receiver may have the message although the attempt failed (see the module doc).
    maybe_delivered: bool = False


@dataclass(frozen=True)
class Delivery:
    """A leased message, detached from its session, and its customer's external id."""

    message: Message
    customer_ref: str


def lease(session: Session, owner: str, stale_after: timedelta, limit: int = 50) -> list[Delivery]:
    """Lease up to ``limit`` due messages for delivery (``LEASE`` long; another worker
    takes them over sooner when ``owner`` has been silent for ``stale_after``)."""
    now = utcnow()
    batch = messages.lease_due(session, owner, now, LEASE, now - stale_after, limit)
    session.flush()
    for message, _ in batch:
        session.expunge(message)
    return [Delivery(message, ref) for message, ref in batch]


def send(delivery: Delivery, settings: Settings) -> Outcome:
    """Try to deliver one message by its channel (no database work). Never raises: an
    error of this one message is its outcome (failed, with the error), so the others of
    the batch, and the worker, go on."""
    message = delivery.message
    try:
        if message.channel == "smtp":
            return send_smtp(message, settings)
        if message.channel == "webhook":
            return send_webhook(message, settings, customer_ref=delivery.customer_ref)
    except Exception as exc:  # one poison message fails alone
        log.exception("message %s could not be delivered", message.key)
        # Where it broke is unknown, so it may have gone out: the codes stay issued.
        return Outcome("failed", f"{type(exc).__name__}: {exc}"[:500], maybe_delivered=True)
    return Outcome("sent")


class _SMTP(smtplib.SMTP):
    """Remembers whether DATA began: a failure before it cannot have handed the message
    over, a failure after it may have (the server may have queued it before the line
    dropped)."""

    data_started = False

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self.data_started = True
        return super().data(msg)


class _SMTPSSL(smtplib.SMTP_SSL, _SMTP):
    pass


def send_smtp(message: Message, settings: Settings) -> Outcome:
    if problem := settings.channel_problem("smtp"):
        return Outcome("refused", problem)
    try:
        email = _email_of(message, settings)
    except (ValueError, TypeError) as exc:
        # Bad data stored before addresses were validated (a line break in it, say):
        # this message can never be built, so nobody can have seen its codes.
        return Outcome("refused", f"the message cannot be built: {exc}"[:500])
    smtp: _SMTP | _SMTPSSL | None = None
    try:
        smtp = (_SMTPSSL if settings.smtp_ssl else _SMTP)(
            settings.smtp_host or "", settings.smtp_port, timeout=settings.smtp_timeout
        )
        with smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(email)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [c for c, _ in exc.recipients.values()]
        if all(c >= 500 for c in codes):
            return Outcome("refused", f"recipient refused: {exc.recipients}")
        return Outcome("retry", f"recipient deferred: {exc.recipients}")
    except smtplib.SMTPSenderRefused as exc:
        if exc.smtp_code >= 500:
            return Outcome("refused", f"sender refused: {exc.smtp_code} {exc.smtp_error!r}")
        return Outcome("retry", f"sender deferred: {exc.smtp_code}")
    except smtplib.SMTPDataError as exc:
        # The server answered DATA with a refusal: it did not take the message.
        status = "refused" if exc.smtp_code >= 500 else "retry"
        return Outcome(status, f"message refused: {exc.smtp_code} {exc.smtp_error!r}")
    except (smtplib.SMTPException, OSError, TimeoutError) as exc:
        # Lost during or after DATA, the content may have been accepted; before it, not.
        maybe = smtp is not None and smtp.data_started
        return Outcome("retry", f"{type(exc).__name__}: {exc}", maybe_delivered=maybe)
    return Outcome("sent")


def _email_of(message: Message, settings: Settings) -> EmailMessage:
    email = EmailMessage()
    email["From"] = settings.smtp_from
    email["To"] = message.recipient or ""
    email["Subject"] = message.subject or ""
    email["Message-ID"] = message_id(message.key, settings.message_id_domain)
    email.set_content(message.body_text or "")
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    # Serialise now: a header that cannot be written fails here, not inside smtplib.
    email.as_bytes()
    return email


class ChannelNotConfigured(Conflict):
    slug = "channel-not-configured"
    title = "The channel is not configured"


def send_test(settings: Settings, address: str, rendered: Rendered) -> None:
    """A test send: the preview (placeholder codes) to one address, now, by SMTP. No
    SMTP server configured is this server's state, refused as a mailing's send is
    (409); a server that fails or refuses the message is a failed gateway (502)."""
    if problem := settings.channel_problem("smtp"):
        raise ChannelNotConfigured(f"a test send goes by SMTP, but {problem}")
    probe = Message(
        key=f"test.{int(time.time() * 1000)}",
        channel="smtp",
        recipient=address,
        subject=rendered.subject,
        body_text=rendered.body_text,
        body_html=rendered.body_html,
        customer_id=0,
    )
    outcome = send_smtp(probe, settings)
    if outcome.status != "sent":
        raise DeliveryFailed(f"test send to {address} failed: {outcome.error}")


class DeliveryFailed(DomainError):
    slug = "delivery-failed"
    status = 502
    title = "Delivery failed"


def send_webhook(message: Message, settings: Settings, *, customer_ref: str | None) -> Outcome:
    """POST the message as signed JSON. ``customer_ref`` is the customer's own id (the
    ``customer_id`` of the API), which is what the receiving system knows them by."""
    if problem := settings.channel_problem("webhook"):
        return Outcome("refused", problem)
    body = json.dumps(
        {
            "message_key": message.key,
            "customer_id": customer_ref,
            "recipient": message.recipient,
            "subject": message.subject,
            "body_text": message.body_text,
            "body_html": message.body_html,
            "mailing_id": message.mailing_id,
            "campaign_id": message.campaign_id,
        }
    ).encode()
    try:
        response = webhooks.post(
            settings.webhook_url or "",
            body,
            secret=settings.webhook_secret,
            timeout=settings.webhook_timeout,
            headers={"X-Promocodes-Message": message.key},
        )
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        return Outcome("retry", f"{type(exc).__name__}: {exc}")  # nothing was sent
    except httpx.HTTPError as exc:
        # The request went out and no answer we can read came back (a timeout, a broken
        # response): the receiver may have taken it.
        return Outcome("retry", f"{type(exc).__name__}: {exc}", maybe_delivered=True)
    if response.is_success:
        return Outcome("sent")
    if response.status_code in (408, 429) or response.status_code >= 500:
        return Outcome("retry", f"HTTP {response.status_code}")
    # Any other answer is the receiver's refusal of this message: retrying cannot help.
    return Outcome("refused", f"HTTP {response.status_code}: {response.text[:200]}")


def record(session: Session, message_id_: int, outcome: Outcome, settings: Settings) -> None:
    """Record a delivery attempt: sent, retried later with backoff, or failed for good.
    A message that failed for good gives its codes back in this same transaction, unless
    some attempt may have handed it over."""
    message = messages.get(session, message_id_)
    if message is None or message.status != "queued":
        return
    now = utcnow()
    message.attempts += 1
    message.lease_until = None
    message.lease_owner = None
    message.error = outcome.error
    message.maybe_delivered = message.maybe_delivered or outcome.maybe_delivered
    if outcome.status == "sent":
        message.status = "sent"
        message.sent_at = now
    elif outcome.status == "retry" and message.attempts < settings.delivery_max_attempts:
        delay = min(settings.delivery_backoff_seconds * 2 ** (message.attempts - 1), 3600)
        message.next_attempt_at = now + timedelta(seconds=delay)
    else:
        message.status = "failed"
        if message.maybe_delivered:
            message.error = f"{outcome.error} (an earlier attempt may have arrived: codes kept)"
        elif issuance.void(session, message.key, now=now):
            message.error = f"{outcome.error} (its codes went back to stock)"

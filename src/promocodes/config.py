"""Settings, read from the environment (prefix ``PROMOCODES_``).

The default is the embedded deployment: a SQLite file under ``./var/`` and no other
configuration. Everything else is opt-in.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Known to everyone who read the code: signing with it proves nothing.
DEFAULT_WEBHOOK_SECRET = "change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROMOCODES_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/promocodes.db",
        description="SQLAlchemy URL; sqlite:///path or postgresql+psycopg://user@host/db",
    )
    # How long a SQLite writer waits for the lock before giving up (ms).
    sqlite_busy_timeout_ms: int = 30_000
    # Codes per INSERT batch during uploads: large enough to amortise round trips,
    # small enough that a batch's sort and parameters stay a few MB.
    upload_batch_size: int = 20_000
    # Problems listed in an upload report; all of them are always counted.
    upload_report_limit: int = 1_000
    # Request bodies: JSON calls are small; code and customer uploads stream to disk.
    max_body_bytes: int = 2 * 1024 * 1024
    max_upload_bytes: int = 512 * 1024 * 1024
    # Where uploads are spooled while they are read (unset: the system's temp folder).
    # Every file there is removed when its upload ends, however it ends.
    upload_temp_dir: str | None = None
    # Uploads larger than this run in the background: 202 + Location to poll.
    upload_background_bytes: int = 4 * 1024 * 1024
    # Mailings: recipients per chunk, and how long a worker's claim on a chunk lasts
    # before another worker may take the chunk over (a dead worker's chunk is retried).
    chunk_lease_seconds: float = 120.0
    # API server processes `serve` starts on its port (its --workers): on PostgreSQL the
    # way to use every core; on SQLite allowed, though writes still go one at a time.
    workers: int = Field(default=1, ge=1, le=64)
    worker_poll_seconds: float = 0.5
    # Workers beat this often; one silent for ``worker_stale_seconds`` is taken for dead
    # and its chunks and messages are taken over without waiting out their leases.
    worker_heartbeat_seconds: float = 5.0
    worker_stale_seconds: float = 15.0
    # Delivery of queued messages (SMTP, webhook): retries with exponential backoff.
    delivery_max_attempts: int = 8
    delivery_backoff_seconds: float = 30.0
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout: float = 30.0
    smtp_from: str = "Promocodes <no-reply@localhost>"
    message_id_domain: str = "promocodes.local"
    webhook_url: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    webhook_timeout: float = 10.0
    # Stock alerts (low stock, exhausted, expiring soon) are POSTed here when set.
    alerts_webhook_url: str | None = None
    # Where people reach this instance (``https://promo.example.com``); with https, the
    # web UI's cookies are ``Secure`` whatever scheme a proxy forwards the request with.
    public_url: str | None = None
    # ``/metrics`` asks for ``Authorization: Bearer <token>`` when set; without group and
    # mailing names its labels carry ids only.
    metrics_token: str | None = None
    metrics_names: bool = True
    alerts_scan_seconds: float = 30.0
    # The first administrator, created by `serve` only while there are no users at all.
    # Without a password one is generated and printed once: never a fixed default.
    admin_email: str | None = None
    admin_password: str | None = None
    log_level: str = "info"
    # "text" for people reading a terminal, "json" (one object per line) for collectors.
    log_format: Literal["text", "json"] = "text"
    # Per API key, enforced by each API process on its own (0 disables): a bucket of
    # `burst` calls refilled at `per_minute / 60` a second.
    api_rate_limit_per_minute: int = Field(default=6_000, ge=0)
    api_rate_limit_burst: int = Field(default=1_000, ge=1)
    # A checked API key is kept this long per process: a revoked key is refused within it.
    api_key_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    # Workers prune old records every `prune_interval_seconds`, `prune_batch_size` rows
    # per short transaction (a long delete would hold SQLite's write lock). A retry of an
    # API call must find its stored answer for at least a day: retention >= 24 h.
    idempotency_retention_hours: float = Field(default=48.0, ge=24)
    prune_interval_seconds: float = 600.0
    prune_batch_size: int = Field(default=1_000, ge=1)

    def unsafe_to_start(self) -> str | None:
        """Why ``serve`` and ``worker`` must not start with this configuration: webhooks
        (messages or stock alerts) signed with the published default secret."""
        hooks = [
            n
            for n, url in (
                ("WEBHOOK_URL", self.webhook_url),
                ("ALERTS_WEBHOOK_URL", self.alerts_webhook_url),
            )
            if url
        ]
        if hooks and self.webhook_secret == DEFAULT_WEBHOOK_SECRET:
            return (
                f"PROMOCODES_{hooks[0]} is set but PROMOCODES_WEBHOOK_SECRET is the default "
                f"{DEFAULT_WEBHOOK_SECRET!r}, which anyone can sign with: set a secret of "
                "your own (e.g. `openssl rand -hex 32`) and give it to the receiver"
            )
        return None

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over https when the public address is https (behind a proxy the
        request itself may arrive over plain http)."""
        return (self.public_url or "").startswith("https://")

    def channel_problem(self, channel: str) -> str | None:
        """Why messages of ``channel`` cannot be delivered with this configuration
        (``None`` when they can): a mailing on such a channel is refused before anything
        is issued, and a queued message on it gives its codes back."""
        if channel == "smtp" and not self.smtp_host:
            return "no SMTP server is configured (PROMOCODES_SMTP_HOST)"
        if channel == "webhook" and not self.webhook_url:
            return "no webhook URL is configured (PROMOCODES_WEBHOOK_URL)"
        return None

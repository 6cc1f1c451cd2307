"""API keys already checked, kept for a few seconds per process.

Checking a key is a database read on every call, and for a small call it cost as much as
the call's own work. A key found valid is kept here by the SHA-256 of its token (never the
token itself) for ``api_key_cache_seconds``; a key revoked meanwhile is refused by every
process at the latest that long after the revocation. Unknown or revoked tokens are not
kept: each is checked again (and a guessed token costs the guesser a read, as before).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from promocodes.apikeys.models import ApiKey


@dataclass(frozen=True, slots=True)
class _Entry:
    key: ApiKey
    until: float


class KeyCache:
    def __init__(self, seconds: float, capacity: int = 10_000) -> None:
        self.seconds = seconds
        self.capacity = capacity
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> ApiKey | None:
        if self.seconds <= 0:
            return None
        entry = self._entries.get(self._digest(token))
        if entry is None or entry.until < time.monotonic():
            return None
        return entry.key

    def put(self, token: str, key: ApiKey) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.capacity:
                self._entries.clear()  # many keys at once: start over, never grow unbounded
            self._entries[self._digest(token)] = _Entry(key, time.monotonic() + self.seconds)

    def forget(self, token: str) -> None:
        with self._lock:
            self._entries.pop(self._digest(token), None)

"""A real `promocodes serve` process on a free loopback port, for tests that need real
concurrency over HTTP or want to measure the server process itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from promocodes.apikeys import service as apikeys
from promocodes.db import Database


@dataclass(frozen=True)
class LiveServer:
    url: str
    token: str
    pid: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def peak_rss_mb(self) -> float:
        """The server process's peak resident memory (VmHWM), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(db: Database, **env: str) -> Iterator[LiveServer]:
    with db.write() as s:
        _, token = apikeys.create(s, "live tests")
    port = free_port()
    exe = Path(sys.executable).parent / "promocodes"
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port)],
        env={
            **os.environ,
            "PROMOCODES_DATABASE_URL": db.url,
            "PROMOCODES_LOG_LEVEL": "warning",
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    detail = proc.stderr.read().decode() if proc.stderr else "exited"
                    raise RuntimeError(detail) from None
                if time.monotonic() > deadline:
                    raise TimeoutError("server did not start in 30 s") from None
                time.sleep(0.1)
        yield LiveServer(url, token, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()

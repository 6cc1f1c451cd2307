"""Uploads cut short over real HTTP leave nothing behind: a client that goes away before
its first byte or halfway through, and a body over its limit, for every route that
spools a body (codes as text, CSV, JSON and a form file; customers; redemptions). The
server's upload folder holds nothing afterwards, and the server answers on."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from promocodes.codes.redemption_file import MAX_FILE_BYTES as REDEMPTION_LIMIT
from promocodes.db import Database
from tests.live import LiveServer, live_server

UPLOAD_LIMIT = 300_000
BOUNDARY = "b0undary"


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    content_type: str
    body: bytes
    limit: int
    # Our spool starts with the body (a form file: once the form is parsed).
    spools_at_once: bool = True


def _targets(gid: int) -> list[Target]:
    codes = [f"AB{i:07d}" for i in range(20_000)]  # ~200 kB as text
    text = "".join(f"{c}\n" for c in codes).encode()
    form = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="c.txt"\r\n'
            f"Content-Type: text/plain\r\n\r\n"
        ).encode()
        + text
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    upload = f"/api/v1/groups/{gid}/codes"
    return [
        Target("codes text", upload, "text/plain", text, UPLOAD_LIMIT),
        Target("codes csv", upload, "text/csv", b"code\n" + text, UPLOAD_LIMIT),
        Target(
            "codes json",
            upload,
            "application/json",
            ('{"codes": [' + ", ".join(f'"{c}"' for c in codes) + "]}").encode(),
            UPLOAD_LIMIT,
        ),
        Target(
            "codes form file",
            upload,
            f"multipart/form-data; boundary={BOUNDARY}",
            form,
            UPLOAD_LIMIT,
            spools_at_once=False,
        ),
        Target(
            "customers",
            "/api/v1/customers/import",
            "application/x-ndjson",
            "".join(f'{{"customer_id": "c{i}"}}\n' for i in range(10_000)).encode(),
            UPLOAD_LIMIT,
        ),
        Target("redemptions", "/api/v1/codes/redemptions", "text/plain", text, REDEMPTION_LIMIT),
    ]


def _connect(server: LiveServer, target: Target, length: int | None) -> socket.socket:
    url = urlsplit(server.url)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=30)
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    head = (
        f"POST {target.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {server.token}\r\nContent-Type: {target.content_type}\r\n"
        f"{framing}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def _files(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.exists() else []


def _wait_until(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _abort_at(server: LiveServer, folder: Path, target: Target, share: float) -> None:
    """Send ``share`` of the body (declared whole), wait until the server spools it, and go."""
    sock = _connect(server, target, len(target.body))
    sock.sendall(target.body[: int(len(target.body) * share)])
    if target.spools_at_once:
        _wait_until(f"{target.name}: nothing spooled", lambda: bool(_files(folder)))
    else:
        time.sleep(0.3)
    sock.close()


def _chunks(target: Target) -> Iterator[bytes]:
    piece = target.body[:65_536]
    for _ in range(target.limit // len(piece) + 2):
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def _over_the_limit(server: LiveServer, target: Target) -> bytes:
    """Stream a chunked body past the limit; stop when the server answers. The answer."""
    sock = _connect(server, target, None)
    with sock:
        try:
            for chunk in _chunks(target):
                if select.select([sock], [], [], 0)[0]:
                    break  # answered already
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while b"\r\n\r\n" not in answer and (more := sock.recv(65_536)):
                answer += more
        except ConnectionResetError:
            pass
    return answer


def test_aborted_and_oversized_uploads_leave_no_file(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    settings = {
        "PROMOCODES_UPLOAD_TEMP_DIR": str(folder),
        "PROMOCODES_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "PROMOCODES_UPLOAD_BACKGROUND_BYTES": "100000",
    }
    with (
        live_server(db, **settings) as server,
        httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client,
    ):
        gid = client.post("/api/v1/groups", json={"name": "Aborted"}).json()["id"]
        for target in _targets(gid):
            for share in (0.0, 0.5):
                _abort_at(server, folder, target, share)
                _wait_until(
                    f"{target.name} cut at {share:.0%}: a file stayed", lambda: not _files(folder)
                )
            if target.limit == UPLOAD_LIMIT:  # the redemption file's limit is 64 MB
                answer = _over_the_limit(server, target)
                assert answer.startswith(b"HTTP/1.1 413"), (target.name, answer[:200])
                assert b"application/problem+json" in answer, target.name
                _wait_until(
                    f"{target.name} over the limit: a file stayed", lambda: not _files(folder)
                )
        # Nothing of the aborted uploads was written; a whole upload still goes in, in the
        # background here, and its file goes too once it is done.
        assert client.get(f"/api/v1/groups/{gid}").json()["total"] == 0
        whole = _targets(gid)[0]
        accepted = client.post(
            whole.path, content=whole.body, headers={"Content-Type": whole.content_type}
        )
        assert accepted.status_code == 202, accepted.text
        _wait_until(
            "the background upload did not finish",
            lambda: client.get(accepted.headers["location"]).json()["status"] == "done",
        )
        assert client.get(f"/api/v1/groups/{gid}").json()["total"] == 20_000
        _wait_until("the background upload's file stayed", lambda: not _files(folder))

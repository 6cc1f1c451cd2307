"""Every curl example of docs/integrators.md runs against the real app, in order, and its
output must match the block shown after it: JSON ("…" matches any value) or text (what
curl prints, "…" matching any run of characters). Every API route has an example, and
the webhook verification snippet accepts what the product really sends."""

from __future__ import annotations

import json
import re
import shlex
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from promocodes import webhooks
from promocodes.apikeys import service as apikeys
from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.db import Database
from promocodes.messaging import delivery
from promocodes.messaging.models import Message
from promocodes.worker import run_until
from tests.live import free_port

GUIDE = Path(__file__).parents[2] / "docs" / "integrators.md"
BLOCK = re.compile(r"```(sh|json|text|python)\n(.*?)```", re.S)


def examples() -> list[tuple[str, str, str]]:
    """(curl command, "json" or "text", expected output), in the order the guide shows them."""
    blocks = BLOCK.findall(GUIDE.read_text(encoding="utf-8"))
    pairs = []
    for (kind, body), (next_kind, next_body) in pairwise(blocks):
        if kind == "sh" and body.lstrip().startswith("curl") and next_kind in ("json", "text"):
            pairs.append((body, next_kind, next_body))
    return pairs


def parse_curl(command: str, url: str, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request a curl command line makes, and how curl prints the answer."""
    command = command.replace("\\\n", " ").replace("$URL", url).replace("$KEY", key)
    method, target, headers, data = "GET", "", {}, None
    output = {"body": True, "write_out": ""}
    tokens = shlex.split(command)
    i = 1
    while i < len(tokens):
        token = tokens[i]
        if token == "-s":
            pass
        elif token == "-X":
            i += 1
            method = tokens[i]
        elif token == "-H":
            i += 1
            name, _, value = tokens[i].partition(":")
            headers[name.strip()] = value.strip()
        elif token in ("-d", "--data-binary"):
            i += 1
            data = tokens[i]
            if data.startswith("$"):  # bash $'…' quoting: backslash escapes
                data = data[1:].encode().decode("unicode_escape")
            method = method if method != "GET" else "POST"
        elif token == "-o":
            i += 1
            assert tokens[i] == "/dev/null", "examples only discard the body"
            output["body"] = False
        elif token == "-w":
            i += 1
            output["write_out"] = tokens[i].encode().decode("unicode_escape")
        else:
            assert not token.startswith("-"), f"the test does not know curl's {token}"
            target = token
        i += 1
    return {"method": method, "url": target, "headers": headers, "content": data}, output


def matches(expected: Any, actual: Any, path: str = "$") -> list[str]:
    if expected == "…":
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(expected) != set(actual):
            return [
                f"{path}: keys {sorted(actual) if isinstance(actual, dict) else actual!r}"
                f" != {sorted(expected)}"
            ]
        return [p for k in expected for p in matches(expected[k], actual[k], f"{path}.{k}")]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(expected) != len(actual):
            return [f"{path}: {actual!r} != {expected!r}"]
        return [
            p
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for p in matches(e, a, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: {actual!r} != {expected!r}"]


def text_matches(expected: str, actual: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in expected.split("…"))
    return re.fullmatch(pattern, actual, re.S) is not None


def run_guide(db: Database, smtp_port: int) -> list[tuple[str, str, Any]]:
    """Run every example; (command, what was expected, what came back) for each mismatch."""
    with db.write() as s:
        _, key = apikeys.create(s, "docs")
    # The test send of a mailing goes to a real SMTP server on loopback.
    settings = Settings(database_url=db.url, smtp_host="127.0.0.1", smtp_port=smtp_port)
    client = TestClient(create_app(settings, db))
    failures: list[tuple[str, str, Any]] = []
    for command, kind, expected in examples():
        # What a running worker would have done by the time the next command is typed
        # (mailings sent, stock scanned).
        run_until(db, settings, timeout=60)
        request, output = parse_curl(command, "http://testserver", key)
        response = client.request(**request)
        if kind == "json":
            problems = matches(json.loads(expected), response.json())
            if problems:
                failures.append((command, expected, [response.text, *problems]))
        else:
            body = response.text.replace("\r\n", "\n") if output["body"] else ""
            status = str(response.status_code)
            printed = body + str(output["write_out"]).replace("%{http_code}", status)
            if not text_matches(expected, printed):
                failures.append((command, expected, printed))
    return failures


def test_every_example_runs_and_answers_as_shown(db: Database) -> None:
    assert len(examples()) >= 40, "the guide lost its examples"
    controller = Controller(_Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        failures = run_guide(db, controller.port)
    finally:
        controller.stop()
    assert failures == [], "\n\n".join(f"{c.strip()}\n→ {got}" for c, _, got in failures)


class _Sink:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


def _route_pattern(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", path)
    return re.compile("".join("[^/?]+" if p.startswith("{") else re.escape(p) for p in parts))


def test_every_api_route_has_an_example() -> None:
    schema = create_app(Settings(database_url="sqlite://")).openapi()
    shown = set()
    for command, _, _ in examples():
        request, _ = parse_curl(command, "http://testserver", "k")
        shown.add((request["method"].upper(), urlsplit(request["url"]).path))
    missing = []
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        pattern = _route_pattern(path)
        for method in operations:
            if not any(m == method.upper() and pattern.fullmatch(p) for m, p in shown):
                missing.append(f"{method.upper()} {path}")
    assert missing == [], "routes without an example in docs/integrators.md"


def test_webhook_verification_snippet_accepts_what_is_sent() -> None:
    snippets = [body for kind, body in BLOCK.findall(GUIDE.read_text()) if kind == "python"]
    assert snippets, "the guide lost its verification snippet"
    namespace: dict[str, Any] = {}
    exec(snippets[0], namespace)
    verify = namespace["verify"]
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "s3cret"
    settings = Settings(
        database_url="sqlite://",
        webhook_url=f"http://127.0.0.1:{server.server_port}/hook",
        webhook_secret=secret,
    )
    message = Message(
        key="m1.42", channel="webhook", customer_id=42, recipient="ann@example.com",
        subject="Hi", body_text="Your code: AUT-0002", body_html=None,
    )  # fmt: skip
    try:
        outcome = delivery.send_webhook(message, settings, customer_ref="c-1001")
    finally:
        server.shutdown()
    assert outcome.status == "sent"
    headers, body = received[0]
    stamp, signed = headers["X-Promocodes-Timestamp"], headers["X-Promocodes-Signature"]
    assert verify(secret, stamp, signed, body) is True
    assert verify("wrong", stamp, signed, body) is False
    assert verify(secret, stamp, signed, body.replace(b"AUT-0002", b"AUT-0003")) is False
    old = str(int(stamp) - 3600)
    assert verify(secret, old, webhooks.signature(secret, old, body), body) is False

"""Every curl example of docs/integrators.md runs against the real app, in order, and its
response must match the JSON shown after it ("…" matches any value)."""

from __future__ import annotations

import json
import re
import shlex
from itertools import pairwise
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from promocodes.apikeys import service as apikeys
from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.db import Database

GUIDE = Path(__file__).parents[2] / "docs" / "integrators.md"
BLOCK = re.compile(r"```(sh|json)\n(.*?)```", re.S)


def examples() -> list[tuple[str, Any]]:
    """(curl command, expected JSON) pairs, in the order the guide shows them."""
    blocks = BLOCK.findall(GUIDE.read_text())
    pairs = []
    for (kind, body), (next_kind, next_body) in pairwise(blocks):
        if kind == "sh" and body.lstrip().startswith("curl") and next_kind == "json":
            pairs.append((body, json.loads(next_body)))
    return pairs


def parse_curl(command: str, url: str, key: str) -> dict[str, Any]:
    command = command.replace("\\\n", " ").replace("$URL", url).replace("$KEY", key)
    method, target, headers, data = "GET", "", {}, None
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
        else:
            target = token
        i += 1
    return {"method": method, "url": target, "headers": headers, "content": data}


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


def test_every_example_runs_and_answers_as_shown(db: Database) -> None:
    found = examples()
    assert len(found) >= 9, "the guide lost its examples"
    with db.write() as s:
        _, key = apikeys.create(s, "docs")
    client = TestClient(create_app(Settings(database_url=db.url), db))
    for command, expected in found:
        request = parse_curl(command, "http://testserver", key)
        response = client.request(**request)
        problems = matches(expected, response.json())
        assert problems == [], f"{command.strip()}\n→ {response.text}\n" + "\n".join(problems)

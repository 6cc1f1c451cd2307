"""Customers: upsert, streaming import with a per-line report, pagination, CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from promocodes.cli import app
from promocodes.customers import service
from promocodes.customers.importer import read_customers
from promocodes.customers.schemas import CustomerIn
from promocodes.db import Database
from promocodes.errors import ValidationFailed
from tests.factories import group_with_codes, issue, make_customer


def test_upsert_creates_then_updates_only_given_fields(db: Database) -> None:
    with db.write() as s:
        _, created = service.upsert(
            s,
            CustomerIn(
                customer_id="alice",
                email="alice@example.com",
                attributes={"city": "Berlin", "tier": "gold"},
            ),
        )
        assert created
    with db.write() as s:
        _, created = service.upsert(
            s,
            CustomerIn(
                customer_id="alice", first_name="Alice", attributes={"tier": None, "age": 31}
            ),
        )
        assert not created
    with db.read() as s:
        out = service.to_out(service.get(s, "alice"))
    assert out.email == "alice@example.com" and out.first_name == "Alice"
    assert out.attributes == {"city": "Berlin", "age": 31}


@pytest.mark.parametrize(
    "bad",
    [{"customer_id": ""}, {"customer_id": "x", "email": "nope"}, {"customer_id": "x", "shoe": 42}],
)
def test_bad_records_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CustomerIn.model_validate(bad)


def test_jsonl_import_reports_bad_lines_and_keeps_the_rest(db: Database) -> None:
    lines = [
        json.dumps({"customer_id": "a", "email": "a@x.io"}),
        "",
        "{not json",
        json.dumps({"customer_id": "b", "email": "broken"}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"customer_id": "a", "first_name": "Ann"}),
    ]
    data = "\n".join(lines).encode()
    with db.write() as s:
        report = service.import_customers(s, read_customers(io.BytesIO(data)))
    assert (report.received, report.created, report.updated, report.invalid_count) == (5, 1, 1, 3)
    assert [e.line for e in report.invalid] == [3, 4, 5]
    assert "email" in report.invalid[1].message
    with db.read() as s:
        a = service.to_out(service.get(s, "a"))
    assert (a.email, a.first_name) == ("a@x.io", "Ann")


def test_csv_import_extra_columns_become_attributes(db: Database) -> None:
    data = "customer_id,email,city,tier\r\nc1,c1@x.io,Berlin,gold\r\nc2,,Paris,\r\n,,,\r\n"
    with db.write() as s:
        report = service.import_customers(
            s, read_customers(io.BytesIO(("\ufeff" + data).encode()), filename="people.csv")
        )
    assert (report.created, report.invalid_count) == (2, 0)
    with db.read() as s:
        assert service.to_out(service.get(s, "c2")).attributes == {"city": "Paris"}
        assert service.to_out(service.get(s, "c1")).attributes == {"city": "Berlin", "tier": "gold"}


def test_json_array_and_csv_without_id_column(db: Database) -> None:
    with db.write() as s:
        ok = service.import_customers(
            s, read_customers(io.BytesIO(b'[{"customer_id": "j1"}, 5]'), filename="x.json")
        )
        bad = service.import_customers(
            s, read_customers(io.BytesIO(b"email\nx@y.io\n"), filename="x.csv")
        )
    assert (ok.created, ok.invalid_count, ok.invalid[0].line) == (1, 1, 2)
    assert "customer_id column" in bad.invalid[0].message


def test_cursor_pagination_walks_everyone_once(db: Database) -> None:
    with db.write() as s:
        for i in range(7):
            make_customer(s, f"p{i}")
    seen: list[str] = []
    cursor = None
    with db.read() as s:
        while True:
            page, cursor = service.list_page(s, cursor=cursor, limit=3)
            seen += [c.customer_id for c in page]
            if cursor is None:
                break
        with pytest.raises(ValidationFailed, match="cursor"):
            service.list_page(s, cursor="garbage!", limit=3)
    assert seen == [f"p{i}" for i in range(7)]


def test_cli_import_and_profile(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMOCODES_DATABASE_URL", db.url)
    file = tmp_path / "people.csv"
    file.write_text("customer_id,first_name,email,city\nann,Ann,ann@x.io,Oslo\nbob,Bob,bad,\n")
    result = CliRunner().invoke(app, ["customers", "import", str(file)])
    assert result.exit_code == 0, result.output
    assert "created" in result.output and "is not an email address" in result.output
    gid = group_with_codes(db, "Autumn", ["AUT-1"])
    issue(db, "ann", gid, "m-1")
    issue(db, "ann", gid, "m-2", kind="repeat")
    shown = CliRunner().invoke(app, ["customers", "show", "ann"])
    assert shown.exit_code == 0, shown.output
    assert "AUT-1" in shown.output and "repeat" in shown.output and "initial" in shown.output
    assert "city: Oslo" in shown.output
    missing = CliRunner().invoke(app, ["customers", "show", "zed"])
    assert missing.exit_code == 1 and "customer 'zed' does not exist" in missing.output

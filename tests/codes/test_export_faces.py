"""One codes export: the API (``Accept: text/csv``), the web UI's download and
``codes export`` give the same rows and columns, the customer included, formula-safe."""

from __future__ import annotations

import csv
import io

import pytest

from promocodes.codes import redemption
from promocodes.db import Database
from tests.api.conftest import client_for
from tests.codes.conftest import Cli
from tests.factories import group_with_codes, issue, make_customer
from tests.web.conftest import app_client, log_in, make_user


@pytest.mark.parametrize("status", [None, "issued"])
def test_api_web_and_cli_export_the_same_csv(db: Database, cli: Cli, status: str | None) -> None:
    gid = group_with_codes(db, "G", ["A1", "-B2", "C3", "D4"])
    with db.write() as s:
        make_customer(s, "=cust")
        redemption.block(s, "D4")
    issue(db, "=cust", gid, "k1")
    query = f"?status={status}" if status else ""
    with client_for(db) as api:
        from_api = api.get(f"/api/v1/groups/{gid}/codes{query}", headers={"Accept": "text/csv"})
    make_user(db)
    with app_client(db) as web:
        assert log_in(web).status_code == 303
        from_web = web.get(f"/groups/{gid}/codes.csv{query}")
    from_cli = cli("codes", "export", "G", *(["--status", status] if status else []))
    assert from_api.status_code == from_web.status_code == 200
    assert from_api.text == from_web.text == from_cli.replace("\r\n", "\n").replace("\n", "\r\n")
    rows = list(csv.reader(io.StringIO(from_api.text)))
    assert rows[0] == ["code", "status", "customer_id", "issued_at", "redeemed_at", "valid_until"]
    issued = [r for r in rows[1:] if r[1] == "issued"]
    # Upload order is sorted order: "-B2" is issued first; both cells are formula-safe.
    assert [(r[0], r[2]) for r in issued] == [("'-B2", "'=cust")]
    if status is None:
        assert sorted(r[0] for r in rows[1:]) == ["'-B2", "A1", "C3", "D4"]

"""The CLI, driven as a user would: commands, tables, one-line errors, exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from promocodes.codes import uploads
from promocodes.db import Database
from tests.codes.conftest import Cli
from tests.factories import assert_counters_exact, counts


def test_group_lifecycle(cli: Cli, db: Database, tmp_path: Path) -> None:
    assert "Created group 1: Autumn 15%" in cli(
        "groups", "create", "Autumn 15%", "--description", "Shoes", "--low-stock", "10"
    )
    file = tmp_path / "codes.txt"
    file.write_text("AUT1\nAUT2\r\nAUT2\nnotvalid!\n\n")
    out = cli("codes", "upload", "Autumn 15%", str(file))
    assert "codes added" in out and "notvalid!" in out and "invalid character '!'" in out
    listed = cli("groups", "list")
    assert "Autumn 15%" in listed and "2" in listed
    assert "Winter" in cli("groups", "edit", "1", "--name", "Winter")
    assert "Winter" in cli("groups", "show", "winter")
    assert "removed" in cli("groups", "delete", "Winter", "--yes")
    assert "Winter" not in cli("groups", "list")


def test_dry_run_and_stdin(cli: Cli, db: Database) -> None:
    cli("groups", "create", "G")
    out = cli("codes", "upload", "G", "-", "--dry-run", input="S1\nS2\n")
    assert "Dry run: nothing was written" in out
    assert counts(db, 1).total == 0
    cli("codes", "upload", "G", "-", input="S1\nS2\n")
    assert counts(db, 1).total == 2
    again = cli("codes", "upload", "G", "-", input="S1\nS2\n")
    assert "already in this group" in again
    assert counts(db, 1).total == 2


def test_a_json_file_uploads_as_the_api_reads_it(cli: Cli, db: Database, tmp_path: Path) -> None:
    cli("groups", "create", "G")
    file = tmp_path / "codes.json"
    file.write_text('{"codes": ["J1", "J2", "bad!", "J1"]}')
    out = cli("codes", "upload", "G", str(file))
    assert "invalid character '!'" in out and "same as line 1" in out
    assert counts(db, 1).total == 2
    empty = tmp_path / "empty.json"
    empty.write_text('{"codes": []}')
    assert "holds no codes" in cli("codes", "upload", "G", str(empty), code=1)
    assert counts(db, 1).total == 2


def test_csv_upload_export_is_formula_safe(cli: Cli, db: Database, tmp_path: Path) -> None:
    cli("groups", "create", "G")
    file = tmp_path / "codes.csv"
    file.write_text("code,valid_until\n-A1,2027-01-31\n=B2,\nPLAIN,\n")
    out = cli("codes", "upload", "G", str(file))
    assert "invalid character '='" in out
    exported = cli("codes", "export", "G")
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0][:2] == ["code", "status"]
    assert sorted(r[0] for r in rows[1:]) == ["'-A1", "PLAIN"]
    assert cli("codes", "export", "G", "--status", "blocked").strip() == ",".join(
        ["code", "status", "customer_id", "issued_at", "redeemed_at", "valid_until"]
    )


def test_block_withdraw_and_uploads_list(cli: Cli, db: Database) -> None:
    cli("groups", "create", "G")
    cli("codes", "upload", "G", "-", input="K1\nK2\nK3\n")
    assert "K1: blocked (was available)" in cli("codes", "block", "K1")
    assert "cli" in cli("uploads", "list", "--group", "G")
    assert "2 codes withdrawn" in cli("uploads", "withdraw", "1", "--yes")
    c = counts(db, 1)
    assert (c.total, c.active, c.blocked) == (1, 0, 1)
    assert_counters_exact(db, 1)


def test_flyer_group_unredeem_and_unblock(cli: Cli, db: Database) -> None:
    cli("groups", "create", "Flyer", "--redeem-unissued")
    assert "printed flyers" in cli("groups", "show", "Flyer")
    cli("codes", "upload", "Flyer", "-", input="F1\nF2\n")
    from promocodes.codes import redemption

    with db.write() as s:
        redemption.redeem(s, "F1", order_id="o-1")
        redemption.block(s, "F2")
    wrong = cli("codes", "unredeem", "F1", "--order-id", "o-2", code=1)
    assert "redeemed by order 'o-1', not 'o-2'" in " ".join(wrong.split())
    assert "F1: redemption reversed, now available" in cli(
        "codes", "unredeem", "F1", "--order-id", "o-1"
    )
    out = cli("codes", "unblock", "F2", "F1")
    assert "F2: unblocked, now available" in out and "F1: not blocked; still available" in out
    c = counts(db, 1)
    assert (c.active, c.redeemed, c.blocked) == (2, 0, 0)
    assert_counters_exact(db, 1)
    cli("groups", "edit", "Flyer", "--issued-only")
    assert "printed flyers" not in cli("groups", "show", "Flyer")


def test_redeem_a_file(cli: Cli, db: Database, tmp_path: Path) -> None:
    cli("groups", "create", "Flyer", "--redeem-unissued")
    cli("codes", "upload", "Flyer", "-", input="F1\nF2\nF3\n")
    file = tmp_path / "till.csv"
    file.write_text("code,order_id\nF1,o-1\nF2,o-2\nNOPE,o-3\n")
    out = " ".join(cli("codes", "redeem", str(file)).split())
    assert "codes redeemed │ 2" in out and "lines refused │ 1" in out and "unknown code" in out
    again = " ".join(cli("codes", "redeem", str(file)).split())
    assert "already redeemed by their order │ 2" in again
    plain = cli("codes", "redeem", "-", "--order-id", "till-1", input="F3\n")
    assert "codes redeemed │ 1" in " ".join(plain.split())
    assert "order_id" in cli("codes", "redeem", "-", input="F3\n", code=1)
    assert counts(db, 1).redeemed == 3
    assert_counters_exact(db, 1)


def test_a_redemption_file_that_is_not_text_or_is_empty_is_one_line(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    cli("groups", "create", "Flyer", "--redeem-unissued")
    cli("codes", "upload", "Flyer", "-", input="F1\n")
    workbook = tmp_path / "till.xlsx"
    workbook.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(200))
    out = cli("codes", "redeem", str(workbook), "--order-id", "o-1", code=1)
    assert out.strip() == (
        "Error: This file is not a text file (it looks like an Excel workbook or another ZIP "
        "archive): save it as CSV or plain text and upload again."
    )
    empty = cli("codes", "redeem", "-", "--order-id", "o-1", input="\n  \n", code=1)
    assert empty.strip() == "Error: The file is empty: nothing to redeem."
    assert counts(db, 1).redeemed == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["groups", "show", "nope"], "no group with id or name 'nope'"),
        (["codes", "upload", "nope", "-"], "no group"),
        (["codes", "block", "NOPE"], "code 'NOPE' does not exist"),
        (["uploads", "withdraw", "77", "--yes"], "upload 77 does not exist"),
        (["groups", "create", ""], "name: Value error, name must not be empty"),
        (["codes", "export", "G", "--status", "lost"], "status must be one of"),
    ],
)
def test_errors_are_one_line_and_exit_1(cli: Cli, args: list[str], message: str) -> None:
    cli("groups", "create", "G")
    out = cli(*args, input="", code=1)
    assert message in " ".join(out.split())
    assert "Traceback" not in out


def test_duplicate_name_is_a_clear_error(cli: Cli) -> None:
    cli("groups", "create", "Promo")
    out = cli("groups", "create", " PROMO ", code=1)
    assert "already exists" in out


def test_missing_file(cli: Cli, tmp_path: Path) -> None:
    cli("groups", "create", "G")
    out = cli("codes", "upload", "G", str(tmp_path / "missing.txt"), code=1)
    assert "No such file" in out and "Traceback" not in out


def test_codes_validate(cli: Cli, db: Database) -> None:
    cli("groups", "create", "Flyer", "--redeem-unissued")
    cli("codes", "upload", "Flyer", "-", input="VF1\nVF2\n")
    assert "VF1: valid" in cli("codes", "validate", "VF1")
    cli("codes", "block", "VF2")
    out = cli("codes", "validate", "VF2", code=1)
    assert "code-blocked" in out
    answer = json.loads(cli("codes", "validate", "NOPE", "--json", code=1))
    assert (answer["valid"], answer["reason"], answer["group"]) == (False, "code-not-found", None)
    assert "does not exist" in cli("codes", "validate", "VF1", "--customer", "ghost", code=1)
    assert counts(db, 1).blocked == 1


def test_benefit_and_limit_from_the_cli(cli: Cli, db: Database) -> None:
    cli("groups", "create", "Ten", "--benefit", "percent", "--benefit-value", "10", "--limit", "1")
    shown = cli("groups", "show", "Ten")
    assert "Benefit: 10% off" in shown and "At most 1 new codes per customer" in shown
    bad = cli("groups", "create", "Bad", "--benefit", "amount", "--benefit-value", "5", code=1)
    assert "benefit.currency" in bad and "needs a currency" in " ".join(bad.split())
    assert "limit_action" in cli("groups", "edit", "Ten", "--limit-action", "never", code=1)
    assert "customer_limit" in cli("groups", "edit", "Ten", "--limit", "0", code=1)
    cli("groups", "edit", "Ten", "--benefit", "gift", "--limit-action", "skip")
    assert "Benefit: A gift" in cli("groups", "show", "Ten")
    cli("groups", "edit", "Ten", "--no-benefit", "--no-limit")
    plain = cli("groups", "show", "Ten")
    assert "Benefit" not in plain and "At most" not in plain


def test_upload_of_a_workbook_is_refused_and_a_semicolon_table_reports_lines(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    cli("groups", "create", "G")
    workbook = tmp_path / "codes.xlsx"
    workbook.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(200))
    out = cli("codes", "upload", "G", str(workbook), code=1)
    assert "This file is not a text file (it looks like an Excel workbook" in out
    assert "Upload" not in cli("uploads", "list")  # nothing recorded
    table = tmp_path / "codes.csv"
    table.write_text("code;valid_until\nC1;2031-01-31\nC2;2020-01-31\nC1;2031-01-31\n")
    out = cli("codes", "upload", "G", str(table))
    assert "expired on 2020-01-31" in out and "same as line 2" in out
    assert counts(db, 1).total == 1


def test_upload_warnings_and_an_empty_file(cli: Cli, db: Database, tmp_path: Path) -> None:
    cli("groups", "create", "G")
    file = tmp_path / "codes.csv"
    file.write_text("Promo Code;Expires;Note\nPR-1;31.01.2030;hi\n")
    out = cli("codes", "upload", "G", str(file))
    assert "Warning: column 'Note' is not read" in out
    assert counts(db, 1).total == 1
    empty = tmp_path / "empty.csv"
    empty.write_text("\n \n")
    assert "The file is empty: nothing to upload." in cli(
        "codes", "upload", "G", str(empty), code=1
    )
    header = tmp_path / "header.csv"
    header.write_text("code;valid_until\n")
    out = cli("codes", "upload", "G", str(header), code=1)
    assert out.strip() == (
        "Error: The file has only a header line ('code;valid_until') and no codes below it: "
        "nothing to upload."
    )
    assert counts(db, 1).total == 1
    with db.read() as s:
        assert uploads.count(s) == 1  # the refused files left no trace

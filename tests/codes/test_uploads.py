"""Uploading codes: the report, dry runs, re-uploads, withdraw and block (SPEC §1)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from promocodes.codes import redemption, service, uploads
from promocodes.codes.code_text import ImportItem
from promocodes.codes.importer import CodeReader
from promocodes.codes.models import Code, Upload
from promocodes.codes.schemas import UploadReport
from promocodes.db import Database
from promocodes.errors import CodeNotFound, Conflict, GroupNotFound, UploadNotFound
from tests.factories import (
    assert_counters_exact,
    counts,
    group_with_codes,
    make_group,
    upload,
)


def _codes(db: Database) -> dict[str, int]:
    with db.read() as s:
        return {code: gid for code, gid in s.execute(select(Code.code, Code.group_id))}


def _balanced(r: UploadReport) -> bool:
    """Every non-blank line lands in exactly one bucket of the report."""
    return r.received == (
        r.added
        + r.duplicates_in_upload
        + r.already_in_group
        + r.in_other_groups
        + r.invalid_count
        + r.expired_count
    )


def test_report_names_every_kind_of_line(db: Database) -> None:
    other = group_with_codes(db, "Other", ["TAKEN1"])
    with db.write() as s:
        group = make_group(s, "Main")
        upload(s, group.id, ["OLD1"])
    text = "NEW1\n\nNEW2\nNEW1\nOLD1\nTAKEN1\nbad code\n=cmd|' /C calc'!A0\n  NEW3  \n"
    with db.write() as s:
        report = upload(s, group.id, text)
    assert report.received == 8  # the blank line is not counted
    assert report.added == 3
    assert report.duplicates_in_upload == 1
    assert report.already_in_group == 1
    assert report.in_other_groups == 1
    assert [(c.line, c.code, c.group_id, c.group_name) for c in report.other_groups] == [
        (6, "TAKEN1", other, "Other")
    ]
    assert report.invalid_count == 2
    assert [i.line for i in report.invalid] == [7, 8]
    assert "space" in report.invalid[0].reason
    assert _balanced(report)
    assert _codes(db) == {
        "TAKEN1": other,
        "OLD1": group.id,
        "NEW1": group.id,
        "NEW2": group.id,
        "NEW3": group.id,
    }
    assert_counters_exact(db, group.id, other)
    with db.read() as s:
        rec = s.get(Upload, report.upload_id)
        assert rec is not None
        assert (rec.received, rec.added, rec.invalid_count, rec.source) == (8, 3, 2, "cli")


def test_duplicates_across_batches_are_counted_once(db: Database) -> None:
    codes = [f"C{i:04d}" for i in range(50)]
    with db.write() as s:
        group = make_group(s, "G")
        report = upload(s, group.id, codes + codes[:20] + codes, batch_size=7)
    assert (report.added, report.duplicates_in_upload) == (50, 70)
    assert counts(db, group.id).total == 50
    assert_counters_exact(db, group.id)


def test_case_matters_for_uniqueness(db: Database) -> None:
    with db.write() as s:
        group = make_group(s, "G")
        report = upload(s, group.id, ["abc", "ABC", "Abc"])
    assert report.added == 3


def test_uploading_the_same_file_twice_adds_nothing_and_says_why(db: Database) -> None:
    codes = [f"SAME{i}" for i in range(30)]
    with db.write() as s:
        group = make_group(s, "G")
        first = upload(s, group.id, codes, batch_size=8)
    with db.write() as s:
        second = upload(s, group.id, codes, batch_size=8)
    assert first.added == 30
    assert (second.added, second.already_in_group, second.received) == (0, 30, 30)
    assert counts(db, group.id).total == 30


def test_dry_run_reports_exactly_and_writes_nothing(db: Database) -> None:
    other = group_with_codes(db, "Other", ["X1"])
    with db.write() as s:
        group = make_group(s, "G")
    text = "\n".join(["N1", "N2", "N1", "X1", "bad!"] + [f"D{i}" for i in range(30)] + ["D1"])
    with db.write() as s:
        dry = upload(s, group.id, text, dry_run=True, batch_size=4)
    assert dry.dry_run and dry.upload_id is None
    assert _codes(db) == {"X1": other}
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Upload)) == 1
    assert counts(db, group.id).total == 0
    with db.write() as s:
        real = upload(s, group.id, text, batch_size=4)
    assert dry.model_dump(exclude={"dry_run", "upload_id"}) == real.model_dump(
        exclude={"dry_run", "upload_id"}
    )
    assert real.added == 32


@pytest.mark.parametrize("text", ["", "\n\n  \n\t\n", "\ufeff\n\u200b\n"])
def test_empty_uploads_report_zero(db: Database, text: str) -> None:
    with db.write() as s:
        group = make_group(s, "G")
        report = upload(s, group.id, text)
    assert report.received == report.added == report.invalid_count == 0


def test_hostile_file_gets_a_clear_report_and_nothing_invalid_is_stored(db: Database) -> None:
    lines = [
        b"GOOD1",
        b"x" * 10_000_000,  # a 10 MB line
        b"NUL\x00BYTE",
        "PR\u041eMO".encode(),  # Cyrillic O look-alike
        "\u00a0SPACED\u00a0".encode(),
        "ZW\u200bINSIDE".encode(),
        b"=cmd|' /C calc'!A0",
        b"\xff\xfe broken utf8",
        b"GOOD2",
    ]
    data = b"\r\n".join(lines)
    with db.write() as s:
        group = make_group(s, "G")
        report = uploads.upload_codes(
            s, group.id, CodeReader(io.BytesIO(data), filename="codes.txt"), source="cli"
        )
    assert sorted(_codes(db)) == ["GOOD1", "GOOD2", "SPACED"]
    assert report.invalid_count == 6
    assert [i.line for i in report.invalid] == [2, 3, 4, 6, 7, 8]
    assert all(len(i.value) <= 81 for i in report.invalid)
    assert "U+041E" in report.invalid[2].reason
    assert _balanced(report)


def test_utf16_csv_with_expiry_column(db: Database) -> None:
    csv_text = "code,valid_until\r\nE1,2027-01-31\r\nE2,\r\nE3,not-a-date\r\n"
    data = csv_text.encode("utf-16")
    with db.write() as s:
        group = make_group(s, "G")
        report = uploads.upload_codes(
            s, group.id, CodeReader(io.BytesIO(data), filename="codes.csv"), source="api"
        )
    assert (report.added, report.invalid_count) == (2, 1)
    assert "valid_until" in report.invalid[0].reason
    with db.read() as s:
        expiry = {code: vu for code, vu in s.execute(select(Code.code, Code.valid_until))}
    assert expiry["E2"] is None
    assert expiry["E1"] is not None and expiry["E1"].date() == datetime(2027, 1, 31).date()
    assert expiry["E1"].tzinfo is not None


def test_invalid_list_is_capped_but_all_are_counted(db: Database) -> None:
    with db.write() as s:
        group = make_group(s, "G")
        report = uploads.upload_codes(
            s, group.id, CodeReader(io.BytesIO(b"bad!\n" * 1500)), source="cli"
        )
    assert report.invalid_count == 1500
    assert len(report.invalid) == 1000


def test_upload_into_unknown_group_fails_cleanly(db: Database) -> None:
    with pytest.raises(GroupNotFound), db.write() as s:
        upload(s, 999, ["A"])


def test_failure_midway_leaves_nothing_half_written(db: Database) -> None:
    with db.write() as s:
        group = make_group(s, "G")

    def items() -> Iterator[ImportItem]:
        yield from CodeReader(io.BytesIO(b"\n".join(f"K{i}".encode() for i in range(100))))
        raise OSError("connection reset while reading the upload")

    with pytest.raises(OSError), db.write() as s:
        uploads.upload_codes(s, group.id, items(), source="api", batch_size=10)
    assert _codes(db) == {}
    assert counts(db, group.id).total == 0
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Upload)) == 0


def test_withdraw_removes_only_available_codes_of_that_upload(db: Database) -> None:
    with db.write() as s:
        group = make_group(s, "G")
        keep = upload(s, group.id, ["KEEP1", "KEEP2"])
        wrong = upload(s, group.id, ["W1", "W2", "W3", "W4"])
        assert keep.upload_id and wrong.upload_id
        now = datetime.now(UTC)
        s.query(Code).filter_by(code="W1").update({"status": "issued", "issued_at": now})
        from promocodes.codes import repository

        repository.bump_counters(s, group.id, available=-1, issued=1)
    with db.write() as s:
        redemption.block(s, "W2")
    with db.write() as s:
        withdrawn = uploads.withdraw_upload(s, wrong.upload_id)
        assert withdrawn.withdrawn == 2 and withdrawn.withdrawn_at is not None
    assert sorted(_codes(db)) == ["KEEP1", "KEEP2", "W1", "W2"]
    c = counts(db, group.id)
    assert (c.total, c.active, c.issued, c.blocked) == (4, 2, 1, 1)
    assert_counters_exact(db, group.id)
    with db.write() as s:  # again: nothing more to remove, not an error
        assert uploads.withdraw_upload(s, wrong.upload_id).withdrawn == 2
    with pytest.raises(UploadNotFound), db.write() as s:
        uploads.withdraw_upload(s, 12345)


def test_withdrawn_codes_can_be_uploaded_again(db: Database) -> None:
    with db.write() as s:
        wrong = make_group(s, "Wrong")
        report = upload(s, wrong.id, ["MOVE1", "MOVE2"])
        assert report.upload_id
    with db.write() as s:
        uploads.withdraw_upload(s, report.upload_id)
    right = group_with_codes(db, "Right", ["MOVE1", "MOVE2"])
    assert counts(db, right).total == 2
    assert counts(db, wrong.id).total == 0


def test_block(db: Database) -> None:
    gid = group_with_codes(db, "G", ["B1", "B2"])
    with db.write() as s:
        assert redemption.block(s, "B1") == "available"
        assert redemption.block(s, "B1") == "blocked"  # idempotent
    c = counts(db, gid)
    assert (c.total, c.active, c.blocked) == (2, 1, 1)
    assert_counters_exact(db, gid)
    with pytest.raises(CodeNotFound), db.write() as s:
        redemption.block(s, "nope")
    with db.write() as s:
        s.query(Code).filter_by(code="B2").update(
            {"status": "redeemed", "redeemed_at": datetime.now(UTC)}
        )
    with pytest.raises(Conflict, match="already redeemed"), db.write() as s:
        redemption.block(s, "B2")


# --- the fast path: runs of clean lines, COPY on PostgreSQL ------------------------------


def _reader(text: str, block_chars: int) -> CodeReader:
    return CodeReader(io.BytesIO(text.encode()), block_chars=block_chars)


@pytest.mark.parametrize("block_chars", [5, 64, 100_000])
def test_runs_report_exactly_what_line_by_line_items_report(db: Database, block_chars: int) -> None:
    other = group_with_codes(db, "Other", ["TAKEN1", "TAKEN2"])
    with db.write() as s:
        group = make_group(s, "Main")
        upload(s, group.id, ["OLD1"])
    lines = [f"N{i:03d}" for i in range(40)]
    lines[7] = lines[3]  # repeated within one run or across runs/batches, by block size
    lines[25] = "TAKEN2"
    lines[31] = "OLD1"
    lines[33] = "bad code"
    lines[38] = lines[0]
    text = "\n".join(lines) + "\n"
    reports = []
    for items in (_reader(text, block_chars), list(_reader(text, block_chars))):
        with db.write() as s:
            # ``list(reader)`` gives one item per line: the reference for the runs.
            reports.append(
                uploads.upload_codes(s, group.id, items, source="cli", batch_size=6, dry_run=True)
            )
    fast, reference = reports
    assert fast == reference
    assert (fast.added, fast.duplicates_in_upload, fast.already_in_group) == (35, 2, 1)
    assert [(c.line, c.code, c.group_id) for c in fast.other_groups] == [(26, "TAKEN2", other)]
    assert [i.line for i in fast.invalid] == [34]
    assert _balanced(fast)


def test_a_batch_that_meets_an_existing_code_still_adds_the_rest(db: Database) -> None:
    # On PostgreSQL the first batches go in by COPY; the one holding TAKEN fails as a
    # whole and is written again with ON CONFLICT, as are the batches after it.
    other = group_with_codes(db, "Other", ["TAKEN"])
    text = (
        "".join(f"C{i:04d}\n" for i in range(12))
        + "TAKEN\n"
        + "".join(f"D{i:04d}\n" for i in range(12))
    )
    with db.write() as s:
        group = make_group(s, "Main")
        report = uploads.upload_codes(s, group.id, _reader(text, 40), source="cli", batch_size=5)
    assert (report.received, report.added, report.in_other_groups) == (25, 24, 1)
    assert [(c.line, c.code, c.group_id) for c in report.other_groups] == [(13, "TAKEN", other)]
    codes = _codes(db)
    assert len(codes) == 25 and codes["TAKEN"] == other
    assert sum(1 for gid in codes.values() if gid == group.id) == 24
    assert_counters_exact(db, group.id, other)
    with db.write() as s:
        again = uploads.upload_codes(s, group.id, _reader(text, 40), source="cli", batch_size=5)
    assert (again.added, again.already_in_group, again.in_other_groups) == (0, 24, 1)


def test_codes_with_their_own_expiry_go_in_with_it(db: Database) -> None:
    text = "code,valid_until\nA1,2031-01-31\nA2,\nA3,2031-02-01T10:00:00Z\n"
    with db.write() as s:
        group = make_group(s, "Expiring")
        report = uploads.upload_codes(
            s, group.id, CodeReader(io.BytesIO(text.encode()), fmt="csv"), source="cli"
        )
    assert report.added == 3
    with db.read() as s:
        rows = {code: vu for code, vu in s.execute(select(Code.code, Code.valid_until))}
    assert rows["A2"] is None
    assert rows["A1"] == datetime(2031, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert rows["A3"] == datetime(2031, 2, 1, 10, 0, tzinfo=UTC)


def test_a_group_removed_during_an_upload_takes_the_uploaded_codes_with_it(db: Database) -> None:
    # Codes have no foreign key to their group: the upload's lock on the group is what
    # makes the removal wait for the upload and then see (and remove) its codes. Without
    # it the removal would miss the uncommitted codes and leave them without a group.
    with db.write() as s:
        group_id = make_group(s, "Doomed").id
    uploaded = threading.Event()
    failures: list[BaseException] = []

    def upload_then_linger() -> None:
        try:
            with db.write() as s:
                upload(s, group_id, [f"LATE{i}" for i in range(50)])
                uploaded.set()
                time.sleep(0.5)  # the removal starts meanwhile and must wait
        except BaseException as exc:
            failures.append(exc)
            uploaded.set()

    uploader = threading.Thread(target=upload_then_linger)
    uploader.start()
    assert uploaded.wait(10)
    started = time.monotonic()
    with db.write() as s:
        result = service.delete_group(s, group_id)
    uploader.join()
    assert not failures
    assert result.outcome == "removed"
    if db.dialect == "postgresql":
        assert time.monotonic() - started > 0.3  # it waited for the upload to commit
    with db.read() as s:
        orphans = s.scalar(
            text("SELECT count(*) FROM codes WHERE group_id NOT IN (SELECT id FROM code_groups)")
        )
    assert orphans == 0
    assert _codes(db) == {}


def test_a_code_past_its_own_date_is_a_warning_and_left_out(db: Database) -> None:
    text = (
        "code;valid_until\n"
        "PAST1;2020-01-31\n"
        "FUTURE1;2031-01-31\n"
        "PAST2;2021-03-01T10:30:00Z\n"
        "PLAIN1;\n"
    )
    with db.write() as s:
        group = make_group(s, "Spring")
        report = uploads.upload_codes(
            s, group.id, CodeReader(io.BytesIO(text.encode()), fmt="csv"), source="cli"
        )
    assert (report.added, report.expired_count, report.invalid_count) == (2, 2, 0)
    assert [(w.line, w.value) for w in report.expired] == [(2, "PAST1"), (4, "PAST2")]
    assert (
        report.expired[0].reason
        == "expired on 2020-01-31: not added, as it could no longer be used"
    )
    assert report.expired[1].reason.startswith("expired on 2021-03-01 10:30 UTC")
    assert _balanced(report)
    assert sorted(_codes(db)) == ["FUTURE1", "PLAIN1"]
    assert_counters_exact(db, group.id)
    with db.read() as s:
        kept = uploads.report_of(uploads.get_upload(s, report.upload_id or 0))
    assert kept == report  # the history shows the same warnings


def test_duplicates_are_listed_by_line_and_all_counted(db: Database) -> None:
    with db.write() as s:
        group = make_group(s, "Main")
        upload(s, group.id, ["OLD1", "OLD2"])
    lines = ["A1", "A2", "A1", "OLD1", "A3", "A2", "A1", "OLD2"]
    with db.write() as s:
        report = upload(s, group.id, lines)
    assert (report.duplicates_in_upload, report.already_in_group) == (3, 2)
    listed = [(d.line, d.code, d.kind, d.first_line) for d in report.duplicates]
    assert listed == [
        (3, "A1", "in_upload", 1),
        (4, "OLD1", "in_group", None),
        (6, "A2", "in_upload", 2),
        (7, "A1", "in_upload", 1),
        (8, "OLD2", "in_group", None),
    ]
    many = [f"R{i % 10}" for i in range(40)]  # 30 repeats
    with db.write() as s:
        capped = uploads.upload_codes(
            s,
            group.id,
            CodeReader(io.BytesIO("\n".join(many).encode())),
            source="cli",
            report_limit=12,
            batch_size=7,
        )
    assert capped.duplicates_in_upload == 30 and len(capped.duplicates) == 12
    assert all(d.kind == "in_upload" for d in capped.duplicates)
    assert _balanced(capped)


def test_a_repeat_never_points_at_a_line_that_is_itself_a_repeat(db: Database) -> None:
    with db.write() as s:
        group = make_group(s, "G")
        # Batches of two: X and A | X (a repeat of line 1) and X again | Y
        report = upload(s, group.id, ["X", "A", "X", "X", "Y"], batch_size=2)
    assert report.duplicates_in_upload == 2
    said = {d.line: d.first_line for d in report.duplicates}
    assert said == {3: None, 4: None}  # "earlier in this upload", never "same as line 3"
    with db.write() as s:
        same_batch = upload(s, make_group(s, "H").id, ["P", "Q", "P"], batch_size=10)
    assert [(d.line, d.first_line) for d in same_batch.duplicates] == [(3, 1)]


def test_file_warnings_are_kept_with_the_upload(db: Database) -> None:
    data = "code;Note\nPR-1;café\n".encode("cp1252")
    with db.write() as s:
        group = make_group(s, "G")
        reader = CodeReader(io.BytesIO(data), fmt="csv")
        report = uploads.upload_codes(s, group.id, reader, source="cli")
    expected = ["column 'Note' is not read", "read as Windows-1252: the file is not UTF-8"]
    assert report.added == 1 and report.warnings == expected
    with db.read() as s:
        assert uploads.report_of(uploads.get_upload(s, report.upload_id or 0)).warnings == expected

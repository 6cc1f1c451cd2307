"""Generated codes: patterns, the guessable refusal, platform-wide uniqueness (also when
two generations race), the upload they make, the CLI, and the worker's refill."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from promocodes.audit.schemas import Filters
from promocodes.audit.service import entries
from promocodes.codes import generation, pattern, uploads
from promocodes.codes.models import Code
from promocodes.codes.pattern import DIGITS, LETTERS, MAX_GENERATE
from promocodes.codes.schemas import GroupCreate, GroupUpdate
from promocodes.codes.service import update_group
from promocodes.db import Database
from promocodes.errors import GroupNotFound, ValidationFailed
from tests.codes.conftest import Cli
from tests.factories import assert_counters_exact, counts, group_with_codes, issue, make_customer


def test_a_pattern_keeps_its_literals_and_draws_without_look_alikes() -> None:
    parsed = pattern.parse("AUT-####-????")
    assert parsed.space == 8**4 * 23**4
    codes = pattern.draw(parsed, 2_000)
    assert len(codes) == 2_000
    for code in codes:
        assert code[:4] == "AUT-" and code[8] == "-"
        assert set(code[4:8]) <= set(DIGITS) and set(code[9:]) <= set(LETTERS)
    drawn = set("".join(pattern.draw(pattern.parse("*" * 20), 500)))
    assert drawn == set(DIGITS + LETTERS)  # every symbol comes up, and only those
    assert not drawn & set("01ILO")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "1 to 64"),
        ("#" * 65, "1 to 64"),
        ("AUT 1#", "character 4 (' ')"),
        ("A%#", "character 2 ('%')"),
        ("ÄÖ#", "character 1"),
        ("SUMMER", "no placeholder"),
    ],
)
def test_a_bad_pattern_says_what_and_where(text: str, says: str) -> None:
    with pytest.raises(ValidationFailed, match="pattern: ") as caught:
        pattern.parse(text)
    assert says in caught.value.detail


def test_counts_outside_the_bounds_or_guessable_are_refused() -> None:
    parsed = pattern.parse("X-###")  # 512 codes: at most 5
    pattern.check_count(parsed, 5)
    for n in (0, -1, MAX_GENERATE + 1):
        with pytest.raises(ValidationFailed, match="give 1 to"):
            pattern.check_count(pattern.parse("*" * 12), n)
    with pytest.raises(ValidationFailed, match="guessable") as caught:
        pattern.check_count(parsed, 6)
    assert "512" in caught.value.detail and "at most 5" in caught.value.detail


def _group(db: Database, name: str = "Gen") -> int:
    return group_with_codes(db, name, [])


def test_generation_is_an_upload_with_its_report_and_audit(db: Database) -> None:
    gid = _group(db)
    with db.write() as s:
        done = generation.generate(s, gid, "AUT-####-????", 1_000, source="cli", batch_size=300)
    assert (done.requested, done.added, done.pattern) == (1_000, 1_000, "AUT-####-????")
    assert counts(db, gid).active == 1_000
    assert_counters_exact(db, gid)
    with db.read() as s:
        upload = uploads.get_upload(s, done.upload_id)
        assert upload.pattern == "AUT-####-????" and upload.added == 1_000
        assert uploads.report_of(upload).added == 1_000
        logged = entries(s, Filters(action="upload.created"))
    assert logged[0].details["pattern"] == "AUT-####-????"


def test_collisions_are_retried_until_the_count_is_reached(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = group_with_codes(db, "Other", ["T-2222", "T-3333"])
    gid = _group(db)
    draws = iter([["T-2222", "T-4444", "T-4444"], ["T-3333"], ["T-5555"]])
    monkeypatch.setattr(generation, "draw", lambda p, n: next(draws))
    with db.write() as s:
        done = generation.generate(s, gid, "T-####", 2, source="cli")
    # T-4444 went in; T-2222 (another group), the second T-4444 and T-3333 were drawn
    # again; T-5555 completed the count.
    assert (done.added, done.collisions) == (2, 3)
    with db.read() as s:
        codes = set(s.scalars(select(Code.code).where(Code.group_id == gid)))
    assert codes == {"T-4444", "T-5555"}
    assert counts(db, other).total == 2
    assert_counters_exact(db, gid, other)


def test_a_pattern_that_runs_out_stops_and_says_so(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    group_with_codes(db, "Other", ["T-2222"])
    gid = _group(db)
    monkeypatch.setattr(generation, "draw", lambda p, n: ["T-2222"] * n)
    with db.write() as s:
        done = generation.generate(s, gid, "T-####", 3, source="cli")
    assert done.added == 0 and 2 * 3 + 1_000 <= done.collisions < 2 * 3 + 1_000 + 3


def test_generation_refuses_bad_input_and_unknown_groups(db: Database) -> None:
    gid = _group(db)
    with db.write() as s, pytest.raises(ValidationFailed, match="guessable"):
        generation.generate(s, gid, "##", 1, source="cli")
    with db.write() as s, pytest.raises(ValidationFailed, match="pattern"):
        generation.generate(s, gid, "A B#", 1, source="cli")
    with db.write() as s, pytest.raises(GroupNotFound):
        generation.generate(s, 999_999, "****-****", 1, source="cli")
    assert counts(db, gid).total == 0


def test_two_generations_racing_never_make_one_code_twice(db: Database) -> None:
    first, second = _group(db, "One"), _group(db, "Two")
    # 33,856 possible codes, 330 each: collisions between the two are likely.
    added: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(gid: int) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                with db.write() as s:
                    added.append(generation.generate(s, gid, "##??", 110, source="cli").added)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(g,)) for g in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(added) == 660
    with db.read() as s:
        rows = s.scalar(select(func.count()).select_from(Code))
        distinct = s.scalar(select(func.count(func.distinct(Code.code))))
    assert rows == distinct == 660
    assert_counters_exact(db, first, second)


def test_cli_generates_and_refuses_in_one_line(db: Database, cli: Cli) -> None:
    gid = _group(db, "Autumn")
    out = cli("codes", "generate", "Autumn", "AUT-####-????", "25")
    assert "25 codes of AUT-####-???? added" in out
    assert counts(db, gid).active == 25
    refused = cli("codes", "generate", "Autumn", "AUT-#", "1", code=1)
    assert "guessable" in refused
    assert "not allowed" in cli("codes", "generate", "Autumn", "AUT #", "1", code=1)
    assert "no group" in cli("codes", "generate", "Nope", "****-****", "1", code=1)


def test_refill_generates_once_per_episode_and_is_audited(db: Database) -> None:
    gid = _group(db, "Refill")
    with db.write() as s:
        update_group(
            s, gid, GroupUpdate(refill_pattern="R-****-****", refill_below=3, refill_count=5)
        )
        generation.generate(s, gid, "R-****-****", 3, source="cli")
        make_customer(s, "a")
        make_customer(s, "b")
    with db.write() as s:
        assert generation.refill(s) == []  # 3 active: not below 3
    issue(db, "a", gid, "k1")
    with db.write() as s:
        (done,) = generation.refill(s)
    assert done.added == 5 and counts(db, gid).active == 7
    with db.write() as s:
        assert generation.refill(s) == []  # the episode is over once active is back up
    with db.write() as s:
        update_group(
            s, gid, GroupUpdate(refill_pattern="R-****-****", refill_below=20, refill_count=5)
        )
    with db.write() as s:
        assert len(generation.refill(s)) == 1  # 7 < 20: a new episode, one refill
    with db.write() as s:
        assert generation.refill(s) == []  # still below: not again
        logged = entries(s, Filters(action="group.refilled"))
    assert len(logged) == 2 and logged[0].details["added"] == 5
    assert_counters_exact(db, gid)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"refill_below": 3}, "together"),
        ({"refill_pattern": "R-####", "refill_below": 3, "refill_count": 50}, "guessable"),
        ({"refill_pattern": "R #", "refill_below": 3, "refill_count": 1}, "not allowed"),
        ({"refill_pattern": "R-****", "refill_below": 0, "refill_count": 1}, "greater than"),
        ({"refill_pattern": "R-****", "refill_below": 1, "refill_count": 0}, "greater than"),
    ],
)
def test_refill_settings_are_checked(fields: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        GroupCreate.model_validate({"name": "G", **fields})

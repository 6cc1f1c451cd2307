"""The message catalogue: identifiers and problem places said in words."""

from __future__ import annotations

from promocodes.web import wording


def test_a_problem_place_is_said_as_the_marketer_sees_it() -> None:
    said = wording.sentence("filters[2].value: must not be empty for ends_with")
    assert said == "Condition 3, value: must not be empty for “ends with”"
    nested = wording.sentence("filters[0].filters[1].group_id: group 7 is archived")
    assert nested == "Condition 1, Condition 2, group: group 7 is archived"


def test_known_phrases_and_keys_read_as_words() -> None:
    assert "tick “Send anyway”" in wording.sentence("Upload more, or send with allow_partial.")
    assert wording.sentence("body_text line 4: unknown") == "“text body” line 4: unknown"
    assert wording.label("duplicates_in_upload") == "Repeated in the file"
    assert wording.label("some_new_key") == "Some new key"
    assert wording.value(["read", "issue"]) == "read, issue" and wording.value(None) == "—"


def test_plain_words_pass_unchanged() -> None:
    assert wording.sentence("enter a whole number of at least 0") == (
        "enter a whole number of at least 0"
    )

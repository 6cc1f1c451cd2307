"""The message catalogue: identifiers and problem places said in words."""

from __future__ import annotations

import ast
from pathlib import Path

from promocodes.web import wording
from promocodes.web.audit import TARGET_TYPES

SRC = Path(__file__).resolve().parents[2] / "src" / "promocodes"


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


def _audited_actions() -> set[str]:
    """Every action name a ``record(…)`` call in the source writes (a constant, or one of
    two constants)."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "record"):
                continue
            if len(node.args) < 3:
                continue
            action = node.args[2]
            options = [action.body, action.orelse] if isinstance(action, ast.IfExp) else [action]
            found.update(
                o.value for o in options if isinstance(o, ast.Constant) and isinstance(o.value, str)
            )
    return found


def test_every_audited_action_has_words_of_its_own() -> None:
    written = _audited_actions()
    assert {"upload.created", "alert.acknowledged", "group.archived"} <= written
    assert written - wording.ACTIONS.keys() == set()
    assert wording.action("upload.created") == "Codes uploaded"
    assert wording.action("user.created") == "User created"


def test_target_kinds_and_channels_read_alike() -> None:
    targets = [wording.label(t) for t in TARGET_TYPES]
    assert all(t[:1].isupper() for t in targets), targets
    assert wording.label("redemptions") == "Redemption file"
    assert wording.detail("low-stock", "kind") == "Low stock"
    assert wording.detail("initial", "kind") == "initial"
    assert wording.channel("outbox") == "Outbox (stored, exportable)"

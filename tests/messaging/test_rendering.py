"""Message templates: macros, customer fields, escaping, validation and preview."""

from __future__ import annotations

import time

import pytest

from promocodes.messaging.rendering import (
    MAX_TEMPLATE_CHARS,
    MessageTemplate,
    Rendered,
    RenderSkip,
    TemplateError,
    preview,
    render,
)
from promocodes.messaging.validation import Problem, Validation, validate

GROUPS = ["Summer 10%", "Mother's Day", "Winter"]
FIELDS = ["customer_id", "email", "first_name", "last_name", "phone"]
CLIENT: dict[str, object] = {
    "customer_id": 7,
    "email": "ann@example.com",
    "first_name": "Ann",
    "last_name": None,
    "attributes": {"city": "Oslo"},
}


class FakeSource:
    """Records every call; issues numbered codes; can refuse a group like the store does."""

    def __init__(
        self, *, last: dict[str, str] | None = None, refuse: dict[str, str] | None = None
    ) -> None:
        self.calls: list[tuple[str, str]] = []
        self.last = last or {}
        self.refuse = refuse or {}

    def promocode(self, group_name: str) -> str:
        self.calls.append(("promocode", group_name))
        if group_name in self.refuse:
            raise RenderSkip(self.refuse[group_name], f"group {group_name!r}")
        return f"CODE{len(self.calls)}"

    def last_promocode(self, group_name: str) -> str | None:
        self.calls.append(("last_promocode", group_name))
        return self.last.get(group_name)

    def benefit(self, group_name: str) -> str:
        self.calls.append(("benefit", group_name))
        return f"benefit of {group_name}"


def body(
    text: str, client: dict[str, object] | None = None, source: FakeSource | None = None
) -> str:
    rendered = render(MessageTemplate(body_text=text), client or CLIENT, source or FakeSource())
    assert rendered.body_text is not None
    return rendered.body_text


def check(text: str, field: str = "body_text") -> Validation:
    template = MessageTemplate(**{field: text})
    return validate(template, known_groups=GROUPS, customer_fields=FIELDS)


def messages(validation: Validation) -> list[str]:
    return [problem.message for problem in validation.problems]


# --- rendering ----------------------------------------------------------------------


def test_macros_render_codes_from_the_source() -> None:
    source = FakeSource(last={"Winter": "W-OLD"})
    text = "{{ client.promocode('Summer 10%') }} / {{ client.last_promocode('Winter') }}"
    assert body(text, source=source) == "CODE1 / W-OLD"
    assert source.calls == [("promocode", "Summer 10%"), ("last_promocode", "Winter")]


def test_same_group_in_one_message_is_issued_once() -> None:
    source = FakeSource()
    template = MessageTemplate(
        subject="Your code {{ client.promocode('Summer 10%') }}",
        body_text="{{ client.promocode('Summer 10%') }} {{ client.promocode(' summer 10% ') }}",
        body_html="<b>{{ client.promocode('SUMMER 10%') }}</b>",
    )
    rendered = render(template, CLIENT, source)
    assert rendered == Rendered("Your code CODE1", "CODE1 CODE1", "<b>CODE1</b>")
    assert source.calls == [("promocode", "Summer 10%")]


def test_each_render_is_a_new_message() -> None:
    source = FakeSource()
    template = MessageTemplate(body_text="{{ client.promocode('Winter') }}")
    first, second = render(template, CLIENT, source), render(template, CLIENT, source)
    assert (first.body_text, second.body_text) == ("CODE1", "CODE2")


def test_a_branch_not_taken_issues_nothing() -> None:
    source = FakeSource()
    text = "{% if false %}{{ client.promocode('Summer 10%') }}{% endif %}done"
    assert body(text, source=source) == "done"
    assert source.calls == []


def test_last_promocode_never_issued_is_empty_and_falsy() -> None:
    source = FakeSource()
    text = (
        "[{{ client.last_promocode('Winter') }}]"
        "{% if client.last_promocode('Winter') %}again{% else %}first time{% endif %}"
    )
    assert body(text, source=source) == "[]first time"
    assert source.calls == [("last_promocode", "Winter")]


def test_group_name_with_an_apostrophe() -> None:
    source = FakeSource()
    text = "{{ client.promocode('Mother\\'s Day') }}"
    assert body(text, source=source) == "CODE1"
    assert source.calls == [("promocode", "Mother's Day")]
    validation = check(text)
    assert validation.valid and validation.groups == ["Mother's Day"]


def test_customer_fields_and_attributes() -> None:
    text = (
        "{{ client.first_name }} <{{ client.email }}> #{{ client.customer_id }} "
        "{{ client.attributes.city }} {{ client.attributes.tier|default('basic') }} "
        "[{{ client.last_name }}]{% if client.attributes.vip is defined %}VIP{% endif %}"
    )
    assert body(text) == "Ann <ann@example.com> #7 Oslo basic []"


def test_html_body_is_escaped_and_text_is_not() -> None:
    client = {**CLIENT, "first_name": "<script>alert(1)</script>"}
    template = MessageTemplate(
        subject="Hi {{ client.first_name }}",
        body_text="Hi {{ client.first_name }}",
        body_html="<p>Hi {{ client.first_name }}</p>",
    )
    rendered = render(template, client, FakeSource())
    assert rendered.body_text == "Hi <script>alert(1)</script>"
    assert rendered.body_html == "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>"


def test_missing_bodies_stay_missing_and_subject_is_one_line() -> None:
    template = MessageTemplate(subject="Hi\r\n{{ client.first_name }}\nBcc: x@y")
    assert render(template, CLIENT, FakeSource()) == Rendered("Hi Ann Bcc: x@y", None, None)


@pytest.mark.parametrize("reason", ["group-exhausted", "group-expired"])
def test_render_skip_from_the_source_passes_through(reason: str) -> None:
    source = FakeSource(refuse={"Winter": reason})
    with pytest.raises(RenderSkip) as raised:
        body("{{ client.promocode('Summer 10%') }}{{ client.promocode('Winter') }}", source=source)
    assert raised.value.reason == reason
    assert not isinstance(raised.value, TemplateError)
    assert source.calls == [("promocode", "Summer 10%"), ("promocode", "Winter")]


def test_time_spent_issuing_does_not_count_against_the_template(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Slow(FakeSource):
        def promocode(self, group_name: str) -> str:
            time.sleep(0.2)  # a busy database
            return super().promocode(group_name)

    monkeypatch.setattr("promocodes.messaging.rendering.RENDER_SECONDS", 0.1)
    text = "{{ client.promocode('Winter') }}{% for i in range(100) %}.{% endfor %}"
    assert body(text, source=Slow()) == "CODE1" + "." * 100


def test_an_unexpected_source_error_is_not_a_template_error() -> None:
    class Broken(FakeSource):
        def promocode(self, group_name: str) -> str:
            raise ConnectionError("database is down")

    with pytest.raises(ConnectionError, match="database is down"):
        body("{{ client.promocode('Winter') }}", source=Broken())


@pytest.mark.parametrize(
    "text",
    [
        "{{ client.nickname }}",
        "{{ unknown_variable }}",
        "{{ client.attributes.tier }}",
        "{{ client.attributes.tier.name }}",
        "{{ client.attributes['tier'] | upper }}",
    ],
)
def test_missing_data_renders_empty(text: str) -> None:
    # As in Liquid; names that cannot exist are refused when the template is saved.
    assert body(f"[{text}]") == "[]"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{{ client.attributes.tier + 1 }}", "tier"),
        ("{{ unknown_variable() }}", "unknown_variable"),
    ],
)
def test_calculating_with_missing_data_is_a_template_error_naming_it(text: str, named: str) -> None:
    with pytest.raises(TemplateError) as raised:
        body(text)
    assert raised.value.reason == "template-error"
    assert named in raised.value.detail
    assert (raised.value.field, raised.value.line) == ("body_text", 1)


@pytest.mark.parametrize("text", ["{{ 1 / 0 }}", "{{ 'a' + 1 }}", "{{ x|no_such_filter }}"])
def test_other_template_failures_are_template_errors(text: str) -> None:
    with pytest.raises(TemplateError) as raised:
        body(text)
    assert raised.value.reason == "template-error"


def test_a_template_over_the_size_limit_is_refused() -> None:
    text = "x" * (MAX_TEMPLATE_CHARS + 1)
    with pytest.raises(TemplateError) as raised:
        body(text)
    assert raised.value.reason == "template-limit"
    assert check(text).problems == [
        Problem("body_text", None, None, "the template is too long (100,001 characters; "
                "the limit is 100,000)")
    ]  # fmt: skip
    assert check("x" * MAX_TEMPLATE_CHARS).valid


# --- preview --------------------------------------------------------------------------


def test_preview_uses_marked_placeholders_and_never_the_source() -> None:
    template = MessageTemplate(
        subject="{{ client.promocode('Summer 10%') }}",
        body_text="{{ client.promocode('summer 10%') }} {{ client.last_promocode('Winter') }}",
        body_html="{{ client.promocode('No Such Group') }}",
    )
    first, second = preview(template, CLIENT), preview(template, CLIENT)
    assert first == second  # deterministic per group
    assert first.subject.startswith("PREVIEW-SUMMER-10-")
    assert first.body_text == f"{first.subject} PREVIEW-WINTER-LAST"
    assert first.body_html is not None and first.body_html.startswith("PREVIEW-NO-SUCH-GROUP-")


# --- validation ---------------------------------------------------------------------


def test_a_valid_template_lists_its_groups() -> None:
    template = MessageTemplate(
        subject="{{ client.first_name }}, {{ client.last_promocode('Winter') }}",
        body_text="{{ client.promocode('summer 10%') }} {{ client.promocode('Summer 10%') }}",
        body_html="{% if client.last_promocode('WINTER') %}{{ client.promocode('Winter') }}"
        "{% endif %}",
    )
    validation = validate(template, known_groups=GROUPS, customer_fields=FIELDS)
    assert validation.problems == [] and validation.valid
    assert validation.groups == ["Winter", "summer 10%"]
    assert validation.initial_groups == ["summer 10%", "Winter"]


def test_group_names_match_case_insensitively_after_trimming() -> None:
    assert check("{{ client.promocode('  SUMMER 10% ') }}").valid


def test_a_syntax_error_has_line_and_column() -> None:
    validation = check("Hello\n  {{ client.first_name }")
    assert validation.problems == [Problem("body_text", 2, 24, "unexpected '}'")]
    unknown_tag = check("Hello\n  {% fi x %}").problems
    assert [(p.line, p.column) for p in unknown_tag] == [(2, 6)]


@pytest.mark.parametrize(
    ("written", "suggested"),
    [
        ("Summer  10%", "Summer 10%"),  # doubled inner space
        ("Summеr 10%", "Summer 10%"),  # Cyrillic е
        ("ЅUMMER 10%", "Summer 10%"),  # Cyrillic Ѕ, capitals
        ("wintr", "Winter"),  # typo, different case
        ("Mothers Day", "Mother's Day"),
    ],
)
def test_an_unknown_group_gets_a_suggestion(written: str, suggested: str) -> None:
    validation = check(f"Hi\n{{{{ client.promocode('{written}') }}}}")
    message = f"unknown promo code group '{written}'; did you mean '{suggested}'?"
    assert validation.problems == [Problem("body_text", 2, 21, message)]
    assert validation.groups == [written]


def test_an_unknown_group_without_a_near_name_has_no_suggestion() -> None:
    assert messages(check("{{ client.last_promocode('Black Friday') }}")) == [
        "unknown promo code group 'Black Friday'"
    ]


@pytest.mark.parametrize(
    "call",
    [
        "client.promocode(group)",
        "client.promocode('Winter' ~ '')",
        "client.promocode('Winter'|lower)",
        "client.promocode('Winter', 'Summer 10%')",
        "client.promocode(name='Winter')",
        "client.last_promocode()",
    ],
)
def test_the_group_name_must_be_a_literal(call: str) -> None:
    assert "the group name must be a literal in single quotes, e.g. client.promocode" in (
        " ".join(messages(check(f"{{{{ {call} }}}}")))
    )


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("{{ client.promocode(‘Summer 10%’) }}", 21),
        ("{{ client.promocode(“Summer 10%”) }}", 21),
        ("{{ client.promocode(«Summer 10%») }}", 21),
        ("{{ client.promocode('Summer 10%’) }}", 32),
    ],
)
def test_curly_quotes_are_reported(text: str, column: int) -> None:
    validation = check(f"Dear customer,\n{text}")
    assert validation.problems == [
        Problem("body_text", 2, column, "use straight single quotes ' in the macro")
    ]


def test_unknown_customer_fields_are_reported() -> None:
    validation = check("Hi {{ client.frist_name }} {{ client.email }} {{ client.age }}")
    assert validation.problems == [
        Problem(
            "body_text", 1, 14, "unknown customer field 'frist_name'; did you mean 'first_name'?"
        ),
        Problem("body_text", 1, 57, "unknown customer field 'age'"),
    ]


def test_include_import_extends_are_refused() -> None:
    validation = check("{% include 'a' %}\n{% import 'b' as b %}\n{% extends 'c' %}", "subject")
    refused = "include/import/extends are not available in messages"
    assert validation.problems == [
        Problem("subject", 1, 4, refused),
        Problem("subject", 2, 4, refused),
        Problem("subject", 3, 4, refused),
    ]


def test_problems_name_their_field() -> None:
    template = MessageTemplate(
        subject="{{ client.promocode('Nope') }}", body_html="{{ client.first_name }"
    )
    validation = validate(template, known_groups=GROUPS, customer_fields=FIELDS)
    assert [p.field for p in validation.problems] == ["subject", "body_html"]
    assert validation.initial_groups == ["Nope"]


def test_bare_and_reassigned_client_are_reported() -> None:
    assert messages(check("{{ client }}{% set client = 1 %}")) == [
        "use client.<field> (e.g. client.first_name) or client.promocode('Group')",
        "'client' is reserved",
    ]


def test_the_problem_list_is_capped() -> None:
    validation = check("".join(f"{{{{ client.field{i} }}}}\n" for i in range(500)))
    assert len(validation.problems) == 101
    assert validation.problems[0].message.startswith("too many problems")

"""The marketer's guide quotes the product: its validation messages come from the real
validator, its labels from the real pages, its examples render as it says."""

from __future__ import annotations

import re
from pathlib import Path

from promocodes.codes.issuance import CANNOT_GIVE
from promocodes.customers.schemas import CUSTOMER_FIELDS
from promocodes.messaging.rendering import MessageTemplate, preview, render
from promocodes.messaging.validation import validate

ROOT = Path(__file__).parents[2]
GUIDE = (ROOT / "docs" / "marketers.md").read_text(encoding="utf-8")
TEMPLATES = ROOT / "src" / "promocodes" / "web" / "templates"
GROUPS = ["Autumn 15%", "Gift card 500", "Kids' Club"]


def table(header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header row starts with ``header``."""
    start = GUIDE.index(header)
    rows = []
    for line in GUIDE[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def code(cell: str) -> str:
    found = re.fullmatch(r"`(.*)`", cell)
    assert found, cell
    return found[1]


def problems(template: str) -> list[str]:
    result = validate(
        MessageTemplate("", template, None), known_groups=GROUPS, customer_fields=CUSTOMER_FIELDS
    )
    return [p.message for p in result.problems]


def test_validation_messages_are_the_validators() -> None:
    rows = table("| You wrote | You are told |")
    assert len(rows) >= 5
    for wrote, told in rows:
        template = code(wrote)
        if "{{" not in template:
            template = "{{ " + template + " }}"
        assert code(told) in problems(template), wrote


def test_apostrophes_and_quotes_as_described() -> None:
    assert problems("{{ client.promocode('Kids\\' Club') }}") == []
    assert "expected token ',', got 'Club'" in problems("{{ client.promocode('Kids' Club') }}")
    assert "use straight single quotes ' in the macro" in problems(
        "{{ client.promocode(\u2018Kids Club\u2019) }}"
    )


class Counting:
    """A code source that hands out numbered codes and counts what was taken."""

    def __init__(self) -> None:
        self.taken: list[str] = []

    def promocode(self, group_name: str) -> str:
        self.taken.append(group_name)
        return f"CODE-{len(self.taken)}"

    def last_promocode(self, group_name: str) -> str | None:
        return None

    def benefit(self, group_name: str) -> str:
        return f"benefit of {group_name}"


def test_one_code_per_group_per_message_and_only_rendered_branches_take_codes() -> None:
    blocks = re.findall(r"```jinja\n(.*?)```", GUIDE, re.S)
    twice, branches = blocks[0], blocks[1]
    subject, _, body = twice.partition("\n\n")
    source = Counting()
    client = {"first_name": "Ann", "attributes": {"vip": False}}
    out = render(MessageTemplate(subject.removeprefix("Subject: "), body, None), client, source)
    assert source.taken == ["Autumn 15%"]
    assert "CODE-1" in out.subject and out.body_text and out.body_text.count("CODE-1") == 1
    for vip, group in ((True, "Gift card 500"), (False, "Autumn 15%")):
        source = Counting()
        render(MessageTemplate("", branches, None), {"attributes": {"vip": vip}}, source)
        assert source.taken == [group]


def test_preview_placeholders_as_quoted() -> None:
    new = MessageTemplate("", "{{ client.promocode('Autumn 15%') }}", None)
    last = MessageTemplate("", "{{ client.last_promocode('Autumn 15%') }}", None)
    assert preview(new, {"attributes": {}}).body_text == "PREVIEW-AUTUMN-15-B84B"
    assert preview(last, {"attributes": {}}).body_text == "PREVIEW-AUTUMN-15-LAST"
    assert "`PREVIEW-AUTUMN-15-B84B`" in GUIDE and "`PREVIEW-AUTUMN-15-LAST`" in GUIDE
    # A named customer without a code from the group: empty, with the note quoted.
    shown = preview(last, {"attributes": {}}, last=set())
    assert shown.body_text == ""
    assert any("This customer has no code from 'Autumn 15%' yet" in n for n in shown.notes)
    assert "“This customer has no code from 'Autumn 15%' yet”" in GUIDE


ANN = {
    "first_name": "Ann",
    "attributes": {"city": "Berlin", "vip": True, "orders": 5, "cart": ["shoes", "socks"]},
}
NEWCOMER: dict[str, object] = {"email": "new@example.com"}


def test_missing_data_renders_as_the_guide_says() -> None:
    rows = table("| Template | For Ann | For the new subscriber |")
    assert len(rows) >= 6
    for template, for_ann, for_newcomer in rows:
        text = code(template).replace("\\|", "|")
        for client, expected in ((ANN, for_ann), (NEWCOMER, for_newcomer)):
            out = render(MessageTemplate("", text, None), client, Counting())
            assert out.body_text == code(expected).replace("\\|", "|"), (text, client)


def test_last_promocode_in_the_same_message_and_in_loops() -> None:
    blocks = re.findall(r"```jinja\n(.*?)```", GUIDE, re.S)
    same = next(b for b in blocks if "Keep it safe" in b)
    source = Counting()
    out = render(MessageTemplate("", same, None), ANN, source)
    assert source.taken == ["Autumn 15%"]
    assert out.body_text == "Your new code: CODE-1. Keep it safe: CODE-1"
    loop = next(b for b in blocks if "client.attributes.cart" in b)
    source = Counting()
    out = render(MessageTemplate("", loop, None), ANN, source)
    assert source.taken == ["Autumn 15%"]
    assert out.body_text == "- shoes: CODE-1\n- socks: CODE-1\n"


def test_skip_reasons_and_labels_are_the_reports() -> None:
    labels = (TEMPLATES / "partials" / "labels.html").read_text(encoding="utf-8")
    rows = table("| Reason | When |")
    for reason, _ in rows:
        slugs = re.findall(r"`([a-z-]+)`", reason)
        assert slugs, reason
        label = re.match(r"\*\*(.+?)\*\*", reason)
        assert label, f"the page shows a label for every reason: {reason}"
        for slug in slugs:
            assert f'"{slug}": "{label[1]}"' in labels, reason
    shown = {s for reason, _ in rows for s in re.findall(r"`([a-z-]+)`", reason)}
    skip_sources = "".join(
        (ROOT / "src" / "promocodes" / "messaging" / name).read_text(encoding="utf-8")
        for name in ("service.py", "campaigns.py", "rendering.py")
    )
    raised = set(re.findall(r'RenderSkip\("([a-z-]+)"', skip_sources))
    raised |= set(re.findall(r'\breason = "([a-z-]+)"', skip_sources))
    raised |= {"template-error", "template-limit", "security"}  # TemplateError's reasons
    raised |= {error.slug for error in CANNOT_GIVE}  # a group that cannot give a code
    assert raised <= shown, f"skip reasons missing from the guide: {raised - shown}"


def test_upload_report_labels_are_the_pages() -> None:
    report = (TEMPLATES / "groups" / "report.html").read_text(encoding="utf-8")
    for label, _ in table("| Report line | Means |"):
        assert f"<dt>{label.strip('*')}</dt>" in report or label.strip("*") in report, label


def test_resend_labels_are_the_pages() -> None:
    page = (TEMPLATES / "mailings" / "show.html").read_text(encoding="utf-8")
    report = (TEMPLATES / "mailings" / "progress.html").read_text(encoding="utf-8")
    guide = " ".join(GUIDE.split())
    assert "**Resend to N failed recipients**" in guide and ">Resend to {{" in page
    assert "**Each send**" in guide and "<caption>Each send</caption>" in report
    assert "(its codes went back to stock)" in guide
    from promocodes.messaging import delivery

    assert "(its codes went back to stock)" in Path(delivery.__file__).read_text()


def test_the_campaign_checkbox_is_named_as_on_the_page() -> None:
    form = (TEMPLATES / "campaigns" / "form.html").read_text(encoding="utf-8")
    assert "**Add new customers from the event**" in GUIDE
    assert "> Add new customers from the event</label>" in form

"""How the CLI prints an upload's report: the counts, then the lines of each kind."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from promocodes.clikit import console
from promocodes.codes.report import InvalidLineOut, UploadReport


def print_report(report: UploadReport) -> None:
    title = "Dry run: nothing was written" if report.dry_run else f"Upload {report.upload_id}"
    table = Table("", "count", title=title)
    for label, value in (
        ("lines received", report.received),
        ("codes added" if not report.dry_run else "codes that would be added", report.added),
        ("duplicates within the upload", report.duplicates_in_upload),
        ("already in this group", report.already_in_group),
        ("already in another group", report.in_other_groups),
        ("invalid lines", report.invalid_count),
        ("past their own date (not added)", report.expired_count),
    ):
        table.add_row(label, f"{value:,}")
    console.print(table)
    for warning in report.warnings:
        console.print(f"Warning: {escape(warning)}", highlight=False)
    _print_lines("Warnings: past their own date", report.expired_count, report.expired)
    if report.invalid:
        bad = Table("line", "value", "reason", title="Invalid lines")
        for item in report.invalid:
            bad.add_row(str(item.line), item.value, item.reason)
        console.print(bad)
        if report.invalid_count > len(report.invalid):
            console.print(f"… and {report.invalid_count - len(report.invalid):,} more")
    if report.other_groups:
        other = Table("line", "code", "group", title="Codes that belong to another group")
        for c in report.other_groups:
            other.add_row(str(c.line), c.code, f"{c.group_id}: {c.group_name}")
        console.print(other)
    if report.duplicates:
        repeats = Table("line", "code", "why", title="Duplicates, not added again")
        for d in report.duplicates:
            earlier = f"same as line {d.first_line}" if d.first_line else "earlier in this upload"
            repeats.add_row(str(d.line), d.code, earlier if d.kind == "in_upload" else "in group")
        console.print(repeats)


def _print_lines(title: str, total: int, lines: list[InvalidLineOut]) -> None:
    if not lines:
        return
    table = Table("line", "code", "warning", title=title)
    for item in lines:
        table.add_row(str(item.line), item.value, item.reason)
    console.print(table)
    if total > len(lines):
        console.print(f"… and {total - len(lines):,} more")

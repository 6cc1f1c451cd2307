"""Uploading codes into a group from the edit page: pasted or a .txt/.csv file, a dry-run
Check, the report, live progress of large files (in the background, as the API does),
and withdrawing an upload."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from promocodes import spool
from promocodes.codes import background, generation, service, uploads
from promocodes.codes.background import Received, Started
from promocodes.codes.importer import read_text
from promocodes.codes.report import UploadReport
from promocodes.errors import DomainError, PayloadTooLarge
from promocodes.web import kit
from promocodes.web.audit import UiActor
from promocodes.web.groups import edit_page
from promocodes.web.kit import Config, Db, Form, User

router = APIRouter(route_class=kit.UiRoute, include_in_schema=False)


@router.post("/groups/{group_id}/upload")
def upload_codes(
    request: Request,
    group_id: kit.Id,
    actor: UiActor,
    form: kit.FormOrTooLarge,
    db: Db,
    cfg: Config,
) -> Response:
    if isinstance(form, PayloadTooLarge):
        # Nothing of the form could be read; with htmx the page keeps what was pasted.
        return _answer(request, db, group_id, pasted="", error=form.detail, status_code=413)
    dry_run = kit.field(form, "action") == "check"
    pasted = kit.field(form, "codes")
    file = kit.upload_of(form, "file")
    problem = None
    if file is not None and pasted.strip():
        problem = "Paste codes or choose a file, not both."
    elif file is None and not pasted.strip():
        problem = "Paste some codes (one per line) or choose a .txt or .csv file."
    if problem is not None:
        return _answer(request, db, group_id, pasted=pasted, error=problem, status_code=422)

    try:
        if file is not None:
            # A copy that outlives the form (a background upload goes on after the
            # response), removed when this block ends: the upload holds it open till done.
            with spool.copied(file.file, spool.folder(cfg), cfg.max_upload_bytes) as path:
                received = Received(path, file.filename, file.content_type)
                done = background.receive(
                    db, cfg, group_id, received, source="web", actor=actor, dry_run=dry_run
                )
            if isinstance(done, Started):
                url = f"/groups/{group_id}?upload={done.upload_id}#report"
                return kit.redirect(request, url)
            report = done
        else:
            with db.write() as s:
                report = uploads.upload_codes(
                    s,
                    group_id,
                    read_text(pasted),
                    source="web",
                    actor=actor,
                    dry_run=dry_run,
                    batch_size=cfg.upload_batch_size,
                    report_limit=cfg.upload_report_limit,
                )
    except DomainError as exc:
        return _answer(request, db, group_id, pasted=pasted, error=exc.detail, status_code=422)
    if not dry_run:
        return kit.redirect(
            request,
            f"/groups/{group_id}?upload={report.upload_id}#report",
            flash=f"{report.added:,} codes added.",
        )
    return _checked(request, db, group_id, pasted, report)


def _checked(
    request: Request, db: Db, group_id: int, pasted: str, report: UploadReport
) -> Response:
    """A Check's report."""
    if kit.is_htmx(request):
        # The form stays as it is (the file too); the report replaces any earlier refusal.
        return kit.fragment(
            request, "groups/check_result.html", {"report": report, "running": None}
        )
    return edit_page(request, db, group_id, pasted=pasted, report=report)


def _answer(
    request: Request, db: Db, group_id: int, *, pasted: str, error: str, status_code: int
) -> Response:
    if kit.is_htmx(request):
        # Shown at the top of the form (not in the report area below it), where the eye
        # starts; the previous report is removed: it is not this submission's.
        return kit.fragment(
            request,
            "groups/upload_refused.html",
            {"message": error},
            status_code=status_code,
            headers={"HX-Retarget": "#upload-error", "HX-Reswap": "innerHTML"},
        )
    return edit_page(
        request, db, group_id, pasted=pasted, upload_error=error, status_code=status_code
    )


@router.post("/groups/{group_id}/generate")
def generate_codes(
    request: Request, group_id: kit.Id, actor: UiActor, form: Form, db: Db, cfg: Config
) -> Response:
    """Generated codes from a pattern: the report of the upload they make, or why not."""
    values = {"pattern": kit.field(form, "pattern").strip(), "count": kit.field(form, "count")}
    try:
        count = kit.parse_int(values["count"])
        if count is None:
            raise ValueError("give how many codes to generate")
        with db.write() as s:
            done = generation.generate(
                s,
                group_id,
                values["pattern"],
                count,
                source="web",
                actor=actor,
                batch_size=cfg.upload_batch_size,
            )
    except (ValueError, DomainError) as exc:
        error = exc.detail if isinstance(exc, DomainError) else f"count: {exc}"
        return edit_page(
            request, db, group_id, generate=values, generate_error=error, status_code=422
        )
    short = "" if done.added == done.requested else f" (of {done.requested:,} asked)"
    return kit.redirect(
        request,
        f"/groups/{group_id}?upload={done.upload_id}#report",
        flash=f"{done.added:,} codes generated{short}.",
    )


@router.get("/uploads/{upload_id}/status")
def upload_status(request: Request, upload_id: kit.Id, user: User, db: Db) -> Response:
    """Polled by the report area while a background upload runs."""
    with db.read() as s:
        upload = uploads.get_upload(s, upload_id)
    if upload.status == "done" and kit.is_htmx(request):
        # Done: reload the page, which now shows the report and the new counts.
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    report = uploads.report_of(upload) if upload.status == "done" else None
    return kit.fragment(
        request,
        "groups/report.html",
        {
            "report": report,
            "running": upload if upload.status != "done" else None,
            "lines": background.progress(upload.id),
        },
    )


@router.get("/uploads/{upload_id}/withdraw")
def confirm_withdraw(request: Request, upload_id: kit.Id, user: User, db: Db) -> Response:
    with db.read() as s:
        upload = uploads.get_upload(s, upload_id)
        group = service.get_group(s, upload.group_id)
    return kit.page(
        request,
        "groups/withdraw.html",
        {"section": "groups", "upload": upload, "group": group},
    )


@router.post("/uploads/{upload_id}/withdraw")
def withdraw(request: Request, upload_id: kit.Id, actor: UiActor, form: Form, db: Db) -> Response:
    with db.write() as s:
        before = uploads.get_upload(s, upload_id).withdrawn
        upload = uploads.withdraw_upload(s, upload_id, actor=actor)
        removed, group_id = upload.withdrawn - before, upload.group_id
    return kit.redirect(
        request,
        f"/groups/{group_id}",
        flash=f"Upload #{upload_id} withdrawn: {removed:,} available codes removed.",
    )

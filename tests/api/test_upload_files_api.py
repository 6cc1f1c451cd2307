"""Uploaded files through the API as a marketer's spreadsheet makes them: a file that is
not text is refused in one sentence and leaves no trace; `;` and tab tables with a header
are read; codes past their own date are warnings; repeats are listed by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from promocodes.codes import uploads
from promocodes.db import Database
from tests.api.conftest import client_for
from tests.audit.common import entries

XLSX = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml" + bytes(300)


def _uploads(db: Database) -> int:
    with db.read() as s:
        return uploads.count(s)


@pytest.mark.parametrize(
    ("data", "how"),
    [
        (XLSX, "multipart"),
        (XLSX, "text/csv"),
        (b"GOOD1\nGOOD2\n\x00\x00\x00\x01\x02binary", "text/plain"),
        (bytes(range(128, 256)) * 200, "multipart"),
    ],
)
def test_a_file_that_is_not_text_is_refused_and_leaves_no_history(
    db: Database, tmp_path: Path, data: bytes, how: str
) -> None:
    spool = tmp_path / "spool"
    # Any file over 100 bytes would go to the background: the refusal comes before.
    with client_for(db, upload_background_bytes=100, upload_temp_dir=str(spool)) as api:
        gid = api.post("/api/v1/groups", json={"name": "Spring"}).json()["id"]
        url = f"/api/v1/groups/{gid}/codes"
        if how == "multipart":
            sent = api.post(url, files={"file": ("codes.xlsx", data, "application/octet-stream")})
        else:
            sent = api.post(url, content=data, headers={"Content-Type": how})
        assert sent.status_code == 422, sent.text
        assert sent.headers["content-type"].startswith("application/problem+json")
        problem = sent.json()
        assert problem["type"] == "not-a-text-file" and problem["title"] == "Not a text file"
        assert problem["detail"].startswith("This file is not a text file (")
        assert problem["detail"].endswith("save it as CSV or plain text and upload again.")
        assert api.get(f"/api/v1/groups/{gid}").json()["total"] == 0
    assert _uploads(db) == 0 and entries(db, "upload.created") == []
    assert list(spool.iterdir()) == []


def test_a_semicolon_table_with_expired_codes_and_repeats(db: Database) -> None:
    table = (
        "code;valid_until\r\n"
        "SPR-1;2031-05-31\r\n"
        "SPR-2;2020-05-31\r\n"  # past: a warning, not added
        "SPR-3;\r\n"
        "SPR-1;2031-05-31\r\n"  # repeats line 2
        "OLD-1;\r\n"  # already in the group
    )
    with client_for(db) as api:
        gid = api.post("/api/v1/groups", json={"name": "Spring", "codes": ["OLD-1"]}).json()["id"]
        url = f"/api/v1/groups/{gid}/codes"
        report = api.post(url, files={"file": ("codes.csv", table.encode(), "text/csv")}).json()
        assert (report["received"], report["added"], report["expired_count"]) == (5, 2, 1)
        assert (report["duplicates_in_upload"], report["already_in_group"]) == (1, 1)
        assert report["expired"] == [
            {
                "line": 3,
                "value": "SPR-2",
                "reason": "expired on 2020-05-31: not added, as it could no longer be used",
            }
        ]
        assert report["duplicates"] == [
            {"line": 5, "code": "SPR-1", "kind": "in_upload", "first_line": 2},
            {"line": 6, "code": "OLD-1", "kind": "in_group", "first_line": None},
        ]
        again = api.get(f"/api/v1/uploads/{report['upload_id']}").json()["report"]
        assert again == report  # the history keeps the same lines
        tabbed = "code\tvalid_until\nTAB-1\t2031-01-01\n"
        sent = api.post(url, content=tabbed, headers={"Content-Type": "text/plain"}).json()
        assert (sent["added"], sent["invalid_count"]) == (1, 0)
        codes = api.get(url, params={"limit": 10}).json()["items"]
        assert {c["code"] for c in codes} == {"OLD-1", "SPR-1", "SPR-3", "TAB-1"}


def test_a_windows_1252_file_honours_its_charset_or_is_recognised(db: Database) -> None:
    table = "code;Note\nCAFE-1;café\nCAFE-2;crème brûlée\n".encode("cp1252")
    with client_for(db) as api:
        gid = api.post("/api/v1/groups", json={"name": "Paris"}).json()["id"]
        url = f"/api/v1/groups/{gid}/codes?dry_run=true"
        sent = api.post(
            url, content=table, headers={"Content-Type": "text/csv; charset=windows-1252"}
        )
        assert sent.status_code == 200, sent.text
        said = sent.json()
        assert said["added"] == 2 and said["invalid_count"] == 0
        assert said["warnings"] == ["column 'Note' is not read"]
        guessed = api.post(url, content=table, headers={"Content-Type": "text/csv"}).json()
        assert guessed["added"] == 2
        assert "read as Windows-1252: the file is not UTF-8" in guessed["warnings"]
        multipart = api.post(url, files={"file": ("paris.csv", table, "text/csv")}).json()
        assert multipart["added"] == 2


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"", "The file is empty: nothing to upload."),
        (b"\r\n  \r\n", "The file is empty: nothing to upload."),
        (b"promo x;Note\nPR-1;x\n", "No column of this file holds the codes"),
    ],
)
def test_empty_files_and_unknown_headers_are_refused_without_history(
    db: Database, data: bytes, said: str
) -> None:
    with client_for(db) as api:
        gid = api.post("/api/v1/groups", json={"name": "Spring"}).json()["id"]
        sent = api.post(
            f"/api/v1/groups/{gid}/codes", content=data, headers={"Content-Type": "text/csv"}
        )
        assert sent.status_code == 422, sent.text
        assert sent.json()["detail"].startswith(said)
        multipart = api.post(
            f"/api/v1/groups/{gid}/codes", files={"file": ("x.csv", data, "text/csv")}
        )
        assert multipart.status_code == 422 and multipart.json()["detail"].startswith(said)
    assert _uploads(db) == 0 and entries(db, "upload.created") == []


@pytest.mark.parametrize("data", [b'{"codes": []}', b'{"codes": ["", "  "]}'])
def test_a_json_upload_without_codes_is_refused_without_history(
    db: Database, tmp_path: Path, data: bytes
) -> None:
    # As an empty file: a 422 in a sentence, and no upload of nothing in the history.
    spool = tmp_path / "spool"
    with client_for(db, upload_background_bytes=5, upload_temp_dir=str(spool)) as api:
        gid = api.post("/api/v1/groups", json={"name": "Spring"}).json()["id"]
        url = f"/api/v1/groups/{gid}/codes"
        for sent in (
            api.post(url, content=data, headers={"Content-Type": "application/json"}),
            api.post(url, files={"file": ("codes.json", data, "application/json")}),
            api.post(
                f"{url}?dry_run=true", content=data, headers={"Content-Type": "application/json"}
            ),
        ):
            assert sent.status_code == 422, sent.text
            problem = sent.json()
            assert problem["type"] == "validation-error"
            assert problem["detail"] == "codes: The list holds no codes: nothing to upload."
        assert api.get(f"/api/v1/groups/{gid}").json()["total"] == 0
    assert _uploads(db) == 0 and entries(db, "upload.created") == []
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize(
    ("data", "kind", "header"),
    [
        (b"code;valid_until\n", "text/csv", "code;valid_until"),
        (b"code;valid_until", "text/plain", "code;valid_until"),
        (b"\xef\xbb\xbfPromo Code,Expires\r\n\r\n  \r\n", "text/csv", "Promo Code,Expires"),
        (b"Code\n", "text/plain", "Code"),
        # Rows of empty cells below the header (a spreadsheet's blank row) hold no code.
        (b"code,valid_until\n,\n", "text/csv", "code,valid_until"),
        (b'code;valid_until\r\n;\r\n"";""\r\n ; \r\n', "text/csv", "code;valid_until"),
    ],
)
def test_a_file_with_only_its_header_is_refused_in_words_without_history(
    db: Database, data: bytes, kind: str, header: str
) -> None:
    # As an empty file is: a report of zeros said nothing of why nothing was added.
    said = f"The file has only a header line ('{header}') and no codes below it: nothing"
    with client_for(db, upload_background_bytes=5) as api:
        gid = api.post("/api/v1/groups", json={"name": "Spring"}).json()["id"]
        url = f"/api/v1/groups/{gid}/codes"
        for sent in (
            api.post(url, content=data, headers={"Content-Type": kind}),
            api.post(f"{url}?dry_run=true", files={"file": ("codes.csv", data, kind)}),
        ):
            assert sent.status_code == 422, sent.text
            assert sent.json()["type"] == "validation-error"
            assert sent.json()["detail"].startswith(said), sent.json()
        # A header and one code is an upload like any other (checked: a dry run).
        body = data.rstrip() + b"\nSPR-1\n"
        one = api.post(f"{url}?dry_run=true", content=body, headers={"Content-Type": kind})
        assert one.status_code == 200 and one.json()["added"] == 1, one.text
    assert _uploads(db) == 0 and entries(db, "upload.created") == []

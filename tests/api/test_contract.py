"""The OpenAPI contract, held by schemathesis against a real `promocodes serve`: every
check (``--checks all``: no 5xx, answers match their schema and documented statuses,
schema-valid requests accepted, schema-violating ones refused, 405 with ``Allow``), every
phase the installed schemathesis has (examples, coverage, fuzzing, stateful), on both
backends.

``PROMOCODES_CONTRACT_EXAMPLES`` sets the examples per operation (the contract's bar is
100; see ``EXAMPLES`` for the suite's default while the run is known to fail).
The server has a database of its own (the ``db`` fixture's, emptied for this test) and no
rate limit, so thousands of generated calls are answered rather than throttled.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from promocodes.db import Database
from tests.factories import group_with_codes, make_customer
from tests.live import live_server

# 100 is the contract's bar; while the run is known to fail (the xfail below), the suite
# takes a short look (a few minutes at 100 on both backends would buy no more signal).
EXAMPLES = int(os.environ.get("PROMOCODES_CONTRACT_EXAMPLES", "10"))


@pytest.mark.slow
# Not yet zero failures: rules JSON Schema cannot state are still answered 422 for
# schema-valid bodies (valid_until after valid_from, a segment filter's operator and
# value, a campaign's body_text or body_html, an email's deliverability), and text/csv
# bodies cannot be schema-invalid. Strict, so the mark goes as soon as the run is clean.
@pytest.mark.xfail(reason="issue 21: rules beyond the schema still answer 422", strict=True)
def test_the_api_keeps_its_openapi_contract(db: Database, tmp_path: Path) -> None:
    with db.write() as s:
        make_customer(s, "0")
    # Something to find, so generated ids and codes sometimes hit real rows.
    group_with_codes(db, "Seed", ["SEED1", "SEED2", "SEED3"])
    exe = Path(sys.executable).parent / "schemathesis"
    with live_server(db, PROMOCODES_API_RATE_LIMIT_PER_MINUTE="0") as live:
        run = subprocess.run(
            [
                str(exe),
                "run",
                f"{live.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {live.token}",
                "--checks",
                "all",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "21",
                "--workers",
                "2",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            cwd=tmp_path,  # its report folder goes with the test's temporary files
        )
    report = run.stdout[-20_000:] + run.stderr[-5_000:]
    assert run.returncode == 0, report

"""The OpenAPI contract, held by schemathesis against a real `promocodes serve`: every
check (no 5xx, answers match their schema and documented statuses, schema-valid requests
accepted, schema-violating ones refused, 405 with ``Allow``, a created thing found and a
deleted one gone), every phase the installed schemathesis has (examples, coverage,
fuzzing, stateful: sequences of calls along the schema's links), on both backends.

``PROMOCODES_CONTRACT_EXAMPLES`` sets the examples per operation (the contract's bar is
100, the suite's default too). ``schemathesis.toml`` beside this file
names the operations whose rules JSON Schema cannot state (a 422 to a schema-valid
request is accepted there alone) and the reads of a deleted thing that stay by design,
each with its reason, and sets the stateful phase's length. Every check is on by
default; ``--checks all`` is not passed, as on the command line it would override the
file's exceptions.
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

# The contract's bar, 100 examples per operation, in every run of the suite: about 6
# minutes a backend (2026-12-07: coverage 150 s, fuzzing 185-190 s, stateful 7-27 s),
# against 3.3 at 10 examples. Fewer, for a quick look while working on the API:
# ``PROMOCODES_CONTRACT_EXAMPLES=10``.
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("PROMOCODES_CONTRACT_EXAMPLES", "100"))


@pytest.mark.slow
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
                "--config-file",
                str(CONFIG),
                "run",
                f"{live.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {live.token}",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "21",
                # One worker: Hypothesis describes its strategies with ``ast.parse``, which
                # on Python 3.11 can fail when two threads parse at once ("AST constructor
                # recursion depth mismatch"): an error of the tool, not of the API.
                "--workers",
                "1",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=max(1800, 30 * EXAMPLES),  # 100 examples: about 6 minutes a backend
            cwd=tmp_path,  # its report folder goes with the test's temporary files
        )
    report = run.stdout[-20_000:] + run.stderr[-5_000:]
    # On a pass too, ``pytest -rP`` shows it: the links the stateful phase followed, the time.
    print(report)
    assert run.returncode == 0, report

"""Schemathesis over the whole OpenAPI schema: generated requests against the real app on
both backends must never produce a 5xx, and every response must match its own schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from promocodes.apikeys import service as apikeys
from promocodes.app import create_app
from promocodes.config import Settings
from promocodes.db import Database
from tests.factories import group_with_codes, make_customer


@pytest.mark.slow
def test_api_conforms_to_its_schema(db: Database) -> None:
    app = create_app(Settings(database_url=db.url), db)
    with db.write() as s:
        _, token = apikeys.create(s, "schemathesis")
        make_customer(s, "0")
    # Something to find, so generated ids and codes sometimes hit real rows.
    group_with_codes(db, "Seed", ["SEED1", "SEED2", "SEED3"])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"}
    # Each result is schemathesis's Ok | Err; .ok() raises for an operation whose schema
    # failed to load, failing this test. The ignore only covers that union's typing.
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(
                headers=headers, checks=[not_a_server_error, response_schema_conformance]
            )

        check()

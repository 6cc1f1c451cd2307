"""Customer attributes stored with NaN or Infinity become valid JSON again.

Before attributes refused non-finite numbers, an API call could store
``{"n": NaN}`` on SQLite (Python's JSON writer emits NaN; SQLite's JSON functions then
call the whole document malformed, and every segment with an attribute condition
failed). Such values are set to null, which is what the API already answered for them;
every other attribute of the customer is kept. PostgreSQL's jsonb never accepted them:
nothing to do there.

Revision ID: 0020_finite_attributes
Revises: 0019_redemption_analytics
Create Date: 2026-12-06 23:45
"""

from __future__ import annotations

import json
import math
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0020_finite_attributes"
down_revision = "0019_redemption_analytics"
branch_labels = None
depends_on = None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    broken = bind.execute(
        sa.text("SELECT id, attributes FROM customers WHERE json_valid(attributes) = 0")
    ).all()
    for customer_id, raw in broken:
        try:
            repaired = json.dumps(_finite(json.loads(raw)), allow_nan=False)
        except ValueError:
            continue  # not JSON for another reason: left for a person to look at
        bind.execute(
            sa.text("UPDATE customers SET attributes = :a WHERE id = :id"),
            {"a": repaired, "id": customer_id},
        )


def downgrade() -> None:
    pass  # the repair is not undone: NaN was never meant to be stored

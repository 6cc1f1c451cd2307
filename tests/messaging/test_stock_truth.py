"""The pre-send check counts the codes that can really be sent: not those past their own
expiry, none of a group that expired or is not valid yet (and it names why), and sending
is refused on that truth rather than on the counters alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from promocodes.db import Database
from promocodes.messaging import mailings
from promocodes.models import utcnow
from tests.api.conftest import client_for
from tests.factories import SENDING, group_with_codes
from tests.messaging.test_mailings import EVERYONE, mailing, people, segment


def _mailing_on(db: Database, codes: int = 5, recipients: int = 3) -> tuple[int, int]:
    gid = group_with_codes(db, "G", [f"S{i}" for i in range(codes)])
    people(db, recipients)
    return gid, mailing(db, segment(db, "All", EVERYONE), "{{ client.promocode('G') }}")


def test_codes_past_their_own_expiry_do_not_count(db: Database) -> None:
    gid, mid = _mailing_on(db)
    with db.write() as s:  # 4 of the 5 codes expired on their own
        s.execute(
            text("UPDATE codes SET valid_until = :past WHERE code IN ('S0','S1','S2','S3')"),
            {"past": utcnow() - timedelta(days=1)},
        )
        s.execute(text("UPDATE code_groups SET has_code_expiry = true"))
    with client_for(db) as api:
        found = api.post(f"/api/v1/mailings/{mid}/check").json()["groups"]
        assert [(g["needed"], g["active"], g["enough"], g["closed"]) for g in found] == [
            (3, 1, False, None)
        ]
        refused = api.post(f"/api/v1/mailings/{mid}/send", json={})
        assert refused.status_code == 409
        assert "has 1 usable codes for 3 recipients" in refused.json()["detail"]
        # The counters still say 5 active: the check looked past them.
        assert api.get(f"/api/v1/groups/{gid}").json()["active"] == 5


@pytest.mark.parametrize(
    ("column", "shift", "says"),
    [("valid_until", -1, "expired on"), ("valid_from", +1, "is valid from")],
)
def test_a_group_outside_its_window_can_send_nothing_and_says_why(
    db: Database, column: str, shift: int, says: str
) -> None:
    _, mid = _mailing_on(db)
    with db.write() as s:
        s.execute(
            text(f"UPDATE code_groups SET {column} = :at"),
            {"at": utcnow() + timedelta(days=shift)},
        )
    with client_for(db) as api:
        [group] = api.post(f"/api/v1/mailings/{mid}/check").json()["groups"]
        assert (group["active"], group["enough"]) == (0, False)
        assert says in group["closed"]
        refused = api.post(f"/api/v1/mailings/{mid}/send", json={})
        assert refused.status_code == 409
        detail = refused.json()["detail"]
        assert says in detail and "none of its codes can be sent" in detail
    with db.write() as s:  # sent anyway, everyone is skipped with the reason
        mailings.send(s, mid, settings=SENDING, allow_partial=True)

"""Model-based test: after any sequence of group/upload/block/withdraw/delete operations
the counters equal what the rows say, and the rows equal a simple in-memory model."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from promocodes.codes import redemption, service, uploads
from promocodes.codes.models import Code, CodeGroup
from promocodes.codes.schemas import GroupUpdate
from promocodes.db import Database
from promocodes.errors import CodeNotFound, GroupNameTaken, GroupNotFound, UploadNotFound
from tests.conftest import reset
from tests.factories import make_group, upload

POOL = [f"P{i}" for i in range(24)] + ["bad code", "x" * 65]
NAMES = ["Alpha", "alpha ", "Beta", "Gamma"]


class Model:
    def __init__(self) -> None:
        self.code_group: dict[str, int] = {}  # code -> group id
        self.code_upload: dict[str, int] = {}
        self.status: dict[str, str] = {}
        self.live: dict[int, str] = {}  # group id -> name key
        self.upload_group: dict[int, int] = {}


def machine_for(db: Database) -> type[RuleBasedStateMachine]:
    class Counters(RuleBasedStateMachine):
        groups = Bundle("groups")
        upload_ids = Bundle("uploads")

        def __init__(self) -> None:
            super().__init__()
            reset(db)
            self.m = Model()

        @rule(target=groups, name=st.sampled_from(NAMES))
        def create(self, name: str) -> int:
            key = name.strip().casefold()
            try:
                with db.write() as s:
                    gid = make_group(s, name).id
            except GroupNameTaken:
                assert key in self.m.live.values()
                return -1
            assert key not in self.m.live.values()
            self.m.live[gid] = key
            return gid

        @rule(
            target=upload_ids,
            gid=groups,
            codes=st.lists(st.sampled_from(POOL), max_size=12),
            dry_run=st.booleans(),
            batch=st.integers(1, 5),
        )
        def upload(self, gid: int, codes: list[str], dry_run: bool, batch: int) -> int:
            try:
                with db.write() as s:
                    report = upload(s, gid, codes, dry_run=dry_run, batch_size=batch)
            except GroupNotFound:
                assert gid not in self.m.live
                return -1
            new = {c for c in codes if len(c) <= 64 and " " not in c} - set(self.m.code_group)
            assert report.added == len(new)
            if dry_run:
                return -1
            assert report.upload_id is not None
            self.m.upload_group[report.upload_id] = gid
            for c in new:
                self.m.code_group[c] = gid
                self.m.code_upload[c] = report.upload_id
                self.m.status[c] = "available"
            return report.upload_id

        @rule(code=st.sampled_from(POOL[:24]))
        def block(self, code: str) -> None:
            try:
                with db.write() as s:
                    redemption.block(s, code)
            except CodeNotFound:
                assert code not in self.m.code_group
                return
            self.m.status[code] = "blocked"

        @rule(uid=upload_ids)
        def withdraw(self, uid: int) -> None:
            if uid < 0:
                return
            try:
                with db.write() as s:
                    uploads.withdraw_upload(s, uid)
            except UploadNotFound:  # its group was removed, uploads with it
                assert self.m.upload_group[uid] not in self.m.live
                return
            for c in [c for c, u in self.m.code_upload.items() if u == uid]:
                if self.m.status[c] == "available":
                    del self.m.code_group[c], self.m.code_upload[c], self.m.status[c]

        @rule(gid=groups, name=st.sampled_from(NAMES))
        def rename(self, gid: int, name: str) -> None:
            key = name.strip().casefold()
            try:
                with db.write() as s:
                    service.update_group(s, gid, GroupUpdate(name=name))
            except GroupNotFound:
                assert gid not in self.m.live
                return
            except GroupNameTaken:
                assert key in {k for g, k in self.m.live.items() if g != gid}
                return
            self.m.live[gid] = key

        @rule(gid=groups)
        def delete(self, gid: int) -> None:
            try:
                with db.write() as s:
                    outcome = service.delete_group(s, gid).outcome
            except GroupNotFound:
                assert gid not in self.m.live
                return
            assert outcome == "removed"  # nothing is ever issued in this machine
            del self.m.live[gid]
            for c in [c for c, g in self.m.code_group.items() if g == gid]:
                del self.m.code_group[c], self.m.code_upload[c], self.m.status[c]

        @invariant()
        def rows_match_model_and_counters_match_rows(self) -> None:
            with db.read() as s:
                rows = {
                    c: (g, st)
                    for c, g, st in s.execute(select(Code.code, Code.group_id, Code.status))
                }
                ids = list(s.scalars(select(CodeGroup.id)))
                assert service.verify_counters(s, ids) == {}
                live = {g.id for g in service.list_groups(s, limit=1000)}
            assert rows == {c: (g, self.m.status[c]) for c, g in self.m.code_group.items()}
            assert live == set(self.m.live)

    return Counters


@pytest.mark.slow
def test_counters_always_equal_rows(db: Database) -> None:
    run_state_machine_as_test(
        machine_for(db),
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )

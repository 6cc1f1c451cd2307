"""The segment builder's server side: live preview, save, errors kept in place."""

from __future__ import annotations

import json

from promocodes.db import Database
from promocodes.segments import service as segments
from tests.factories import group_with_codes, issue, make_customer
from tests.web.conftest import Ui, find


def world(db: Database) -> int:
    gid = group_with_codes(db, "Autumn", [f"A{i}" for i in range(10)])
    with db.write() as s:
        for name in ("ann", "ben", "cat"):
            make_customer(s, name, email=f"{name}@shop.io")
    issue(db, "ann", gid, key="1")
    issue(db, "ann", gid, key="2")
    issue(db, "ben", gid, key="3")
    return gid


def both_filters(gid: int) -> dict[str, object]:
    return {
        "type": "and",
        "filters": [
            {"type": "issued_count", "op": "lt", "value": 2, "group_id": gid},
            {"type": "issued_from_group", "group_id": gid},
        ],
    }


def test_preview_counts_and_samples_the_tree(ui: Ui, db: Database) -> None:
    gid = world(db)
    response = ui.htmx("/segments/preview", {"filter": json.dumps(both_filters(gid))})
    assert 'data-count="1"' in response.text and "ben" in response.text
    assert "ann@shop.io" not in response.text
    negated = {"type": "not", "filter": {"type": "issued_from_group", "group_id": gid}}
    response = ui.htmx("/segments/preview", {"filter": json.dumps(negated)})
    assert 'data-count="1"' in response.text and "cat" in response.text


def test_preview_of_an_unfinished_tree_says_what_is_missing(ui: Ui) -> None:
    tree = {"type": "and", "filters": [{"type": "issued_from_group", "group_id": 999}]}
    response = ui.htmx("/segments/preview", {"filter": json.dumps(tree)})
    assert response.status_code == 200
    # Said next to the builder (out of band), naming the node to highlight, not a number.
    problem = "The highlighted condition — Group: group 999 does not exist or is archived"
    assert problem in response.text and 'id="tree-problems"' in response.text
    assert '["filters[0]"]' in response.text and "Condition 1" not in response.text
    response = ui.htmx("/segments/preview", {"filter": "{not json"})
    assert "not valid JSON" in response.text


def test_save_and_edit_a_segment(ui: Ui, db: Database) -> None:
    gid = world(db)
    page = ui.get("/segments/new").text
    assert 'id="builder-data"' in page and "Autumn" in page
    response = ui.post(
        "/segments/new", {"name": "Got one", "filter": json.dumps(both_filters(gid))}
    )
    assert response.status_code == 303
    segment_id = int(find(r"/segments/(\d+)", response.headers["location"]))
    page = ui.get(f"/segments/{segment_id}").text
    assert "issued_from_group" in page and 'value="Got one"' in page
    response = ui.post(
        f"/segments/{segment_id}", {"name": "Renamed", "filter": '{"type": "and", "filters": []}'}
    )
    assert response.status_code == 303
    with db.read() as s:
        saved = segments.get(s, segment_id)
        assert (saved.name, saved.filter) == ("Renamed", {"type": "and", "filters": []})
    assert "Renamed" in ui.get("/segments").text


def test_a_failed_save_keeps_the_name_and_the_tree(ui: Ui, db: Database) -> None:
    gid = world(db)
    ui.post("/segments/new", {"name": "Taken", "filter": '{"type": "and", "filters": []}'})
    tree = json.dumps(both_filters(gid))
    response = ui.post("/segments/new", {"name": "Taken", "filter": tree})
    assert response.status_code == 422
    assert "already exists" in response.text and 'value="Taken"' in response.text
    assert "issued_count" in response.text  # the tree is back in the builder's field
    bad = {"type": "issued_count", "op": "between", "value": [3, 1]}
    response = ui.post("/segments/new", {"name": "Bad", "filter": json.dumps(bad)})
    assert response.status_code == 422 and "low &lt;= high" in response.text


def test_delete_says_what_happens_first(ui: Ui, db: Database) -> None:
    from tests.messaging.test_mailings import EVERYONE, mailing, people, segment, send_and_work

    people(db, 1)
    unused = segment(db, "Unused", EVERYONE)
    assert f'href="/segments/{unused}/delete"' in ui.get(f"/segments/{unused}").text
    assert 'data-outcome="removed"' in ui.get(f"/segments/{unused}/delete").text
    done = ui.post(f"/segments/{unused}/delete")
    assert done.status_code == 303 and done.headers["location"] == "/segments"
    assert "Segment “Unused” deleted." in ui.get("/segments").text

    used = segment(db, "Everyone", EVERYONE)
    mid = mailing(db, used, "Hi", name="Spring draft")
    blocked = ui.get(f"/segments/{used}/delete").text
    assert 'data-outcome="blocked"' in blocked and f'href="/mailings/{mid}">Spring draft' in blocked
    refused = ui.post(f"/segments/{used}/delete")
    assert refused.status_code == 409 and "Spring draft" in refused.text
    send_and_work(db, mid)
    assert 'data-outcome="archived"' in ui.get(f"/segments/{used}/delete").text
    assert ui.post(f"/segments/{used}/delete").status_code == 303
    listing = ui.get("/segments").text
    assert "still name it on their reports" in listing  # the flash
    assert f'href="/segments/{used}"' not in listing
    assert "Everyone (deleted since)" in ui.get(f"/mailings/{mid}").text
    # The mailing's link still opens it: read-only, badged, nothing to save or delete.
    kept = ui.get(f"/segments/{used}").text
    assert 'id="archived-segment"' in kept and "Archived</span>" in kept
    assert "Save segment" not in kept and f'href="/segments/{used}/delete"' not in kept
    # The Archived tab leads to it, badged; the live list does not.
    assert 'href="/segments?show=archived"' in listing
    tab = ui.get("/segments", params={"show": "archived"}).text.partition('id="segments"')[2]
    assert f'href="/segments/{used}"' in tab and "Archived</span>" in tab
    assert "Unused" not in tab  # removed for good: nothing to keep


def test_preview_of_customers_at_a_groups_limit(ui: Ui, db: Database) -> None:
    from promocodes.codes import service
    from promocodes.codes.schemas import GroupUpdate

    gid = world(db)
    with db.write() as s:
        service.update_group(s, gid, GroupUpdate(customer_limit=2))
    tree = {"type": "reached_limit", "group_id": gid}
    response = ui.htmx("/segments/preview", {"filter": json.dumps(tree)})
    assert 'data-count="1"' in response.text and "ann" in response.text
    page = ui.get("/segments/new").text
    assert "/static/js/segments.js" in page


def test_a_fourth_condition_on_issued_codes_is_refused_in_words(ui: Ui, db: Database) -> None:
    gid = world(db)
    condition = {"type": "issued_from_group", "group_id": gid}
    tree = {"type": "or", "filters": [condition] * 4}
    response = ui.htmx("/segments/preview", {"filter": json.dumps(tree)})
    assert response.status_code == 200
    said = "The highlighted condition — a segment has at most 3 conditions on issued promo codes"
    assert said in response.text and '["filters[3]"]' in response.text, response.text
    assert response.text.count("at most 3 conditions") == 1  # once, next to the builder


def test_a_refused_tree_is_said_once_under_the_builder_and_the_summary_links_there(
    ui: Ui, db: Database
) -> None:
    gid = world(db)
    condition = {"type": "issued_from_group", "group_id": gid}
    nested = {"type": "and", "filters": [{"type": "or", "filters": [condition] * 4}]}
    response = ui.post("/segments/new", {"name": "Too many", "filter": json.dumps(nested)})
    assert response.status_code == 422
    assert response.text.count("at most 3 conditions") == 1
    assert '<a href="#conditions">Conditions</a>: see the problem shown under them' in (
        response.text
    )
    assert 'id="conditions" tabindex="-1" aria-invalid="true"' in response.text
    assert "data-nodes='[\"filters[0].filters[3]\"]'" in response.text
    assert "Condition " not in response.text and 'href="#filter"' not in response.text

"""OpenAPI links: a value an answer carries (a created id, an issued code) declared as the
path parameter of the operations that take it.

A reader of ``/docs`` or a client generated from the schema sees what can be done with
what it got; the contract run (``tests/api/test_contract.py``) follows them in its
stateful phase, chaining real calls (create a group, issue from it, redeem the code)
instead of guessing ids. Targets are named by their operationId, FastAPI's own (function
name, path and method): ``tests/api/test_openapi_links.py`` checks that each names an operation
with that parameter, so a renamed or moved route fails there instead of dropping a link
unseen, and that every operation on a created thing has its link.
"""

from __future__ import annotations

from typing import Any

Responses = dict[int | str, dict[str, Any]]


def links(
    status: int, field: str, parameter: str, *targets: str, in_body: tuple[str, ...] = ()
) -> Responses:
    """A route's ``responses`` entry: the ``field`` of its ``status`` answer's body is the
    path ``parameter`` of each target operation (named by operationId), and the body
    field ``parameter`` of each ``in_body`` one."""
    expression = f"$response.body#/{field}"
    found = {t: {"operationId": t, "parameters": {parameter: expression}} for t in targets}
    # An object whose values are expressions: schemathesis evaluates them and puts them
    # into the body it generates (OpenAPI itself reads a literal or one expression).
    found |= {t: {"operationId": t, "requestBody": {parameter: expression}} for t in in_body}
    return {status: {"links": found}}


# A new group's id: everything done to a group.
GROUP_CREATED = links(
    201,
    "id",
    "group_id",
    "get_group_api_v1_groups__group_id__get",
    "update_group_api_v1_groups__group_id__patch",
    "delete_group_api_v1_groups__group_id__delete",
    "group_stock_api_v1_groups__group_id__stock_get",
    "issue_code_api_v1_groups__group_id__issue_post",
    "upload_codes_api_v1_groups__group_id__codes_post",
    "list_codes_api_v1_groups__group_id__codes_get",
    "generate_codes_api_v1_groups__group_id__generate_post",
    "group_analytics_api_v1_groups__group_id__analytics_get",
)

# An issued code: what a checkout or an operator does with it next.
CODE_ISSUED = links(
    200,
    "code",
    "code",
    "lookup_code_api_v1_codes__code__get",
    "validate_code_api_v1_codes__code__validate_post",
    "redeem_code_api_v1_codes__code__redeem_post",
    "unredeem_code_api_v1_codes__code__redemption_delete",
    "block_code_api_v1_codes__code__block_post",
    "unblock_code_api_v1_codes__code__unblock_post",
)

# An upload (a file of codes, or generated ones): its report, and taking it back. A dry
# run's ``upload_id`` is null: followed, it names no upload (404).
_UPLOAD_TARGETS = (
    "get_upload_api_v1_uploads__upload_id__get",
    "withdraw_upload_api_v1_uploads__upload_id__withdraw_post",
)
CODES_UPLOADED = links(200, "upload_id", "upload_id", *_UPLOAD_TARGETS)
CODES_GENERATED = links(201, "upload_id", "upload_id", *_UPLOAD_TARGETS)

# A new segment: its operations, and a mailing to it (no mailing without a segment).
SEGMENT_CREATED = links(
    201,
    "id",
    "segment_id",
    "get_segment_api_v1_segments__segment_id__get",
    "update_segment_api_v1_segments__segment_id__patch",
    "delete_segment_api_v1_segments__segment_id__delete",
    "segment_customers_api_v1_segments__segment_id__customers_get",
    in_body=("create_mailing_api_v1_mailings_post",),
)

MAILING_CREATED = links(
    201,
    "id",
    "mailing_id",
    "get_mailing_api_v1_mailings__mailing_id__get",
    "update_mailing_api_v1_mailings__mailing_id__patch",
    "mailing_skips_api_v1_mailings__mailing_id__skips_get",
    "check_mailing_api_v1_mailings__mailing_id__check_post",
    "preview_mailing_api_v1_mailings__mailing_id__preview_post",
    "test_mailing_api_v1_mailings__mailing_id__test_post",
    "send_mailing_api_v1_mailings__mailing_id__send_post",
    "resend_mailing_api_v1_mailings__mailing_id__resend_post",
    "cancel_mailing_api_v1_mailings__mailing_id__cancel_post",
    "mailing_messages_api_v1_mailings__mailing_id__messages_get",
    "mailing_analytics_api_v1_mailings__mailing_id__analytics_get",
)

CAMPAIGN_CREATED = links(
    201,
    "id",
    "campaign_id",
    "get_campaign_api_v1_campaigns__campaign_id__get",
    "update_campaign_api_v1_campaigns__campaign_id__patch",
    "delete_campaign_api_v1_campaigns__campaign_id__delete",
    "preview_campaign_api_v1_campaigns__campaign_id__preview_post",
    "campaign_messages_api_v1_campaigns__campaign_id__messages_get",
    "campaign_analytics_api_v1_campaigns__campaign_id__analytics_get",
)

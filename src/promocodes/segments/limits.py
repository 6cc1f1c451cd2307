"""How large a segment's filter tree may be, checked before anything else is done with it.

Five limits, each refused with a message naming the offending part of the tree:

- nesting: at most ``MAX_DEPTH`` levels;
- conditions: at most ``MAX_NODES`` nodes (``and``/``or``/``not`` count too);
- conditions on issued codes (``HISTORY_TYPES``): at most ``MAX_HISTORY`` of them. Each
  reads the issuance history — three rows per customer in a typical database, an index
  range per group at best, a join with the codes for ``redeemed`` — and costs about as
  much as counting the whole segment without it (0.1–0.9 s over 1,000,000 customers and
  3,000,000 issuances, measured by ``bench/segments.py``). Their cost adds up, so the
  count of them is what keeps the largest legal segment countable in under 2 s; a cost
  per node could not, since one of them weighs as much as a thousand listed values;
- one list: at most ``MAX_IN_VALUES`` values;
- the size of the whole tree: every node costs ``NODE_COST`` and every listed value
  ``VALUE_COST``; the sum may not exceed ``MAX_COST``. The two caps above are
  independent, so without this one a tree of 200 lists of 1,000 values each would be
  legal — 200,000 values, a query that takes minutes to build. The budget keeps one
  full list with plenty of conditions around it (1,000 + 10 · 200 = 3,000), and every
  tree of 200 conditions without lists, legal; what it refuses is many long lists.

The checks run on the decoded JSON (``raw_parts``) before Pydantic validates a single
value, and stop at the first node over a limit: refusing an 800 KB tree of 199 long lists
reads a few hundred dicts and never looks inside a list, so it takes well under a
millisecond. Trees built in Python are checked the same way from their nodes
(``tree.check_limits``). Pure: no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic_core import PydanticCustomError

MAX_DEPTH = 10
MAX_NODES = 200
MAX_IN_VALUES = 1_000
NODE_COST = 10
VALUE_COST = 1
MAX_COST = MAX_NODES * NODE_COST + MAX_IN_VALUES * VALUE_COST
MAX_HISTORY = 3
HISTORY_TYPES = frozenset({"issued_count", "issued_from_group", "reached_limit"})

# The Pydantic error type of every limit: its context carries the path of the part.
LIMITS = "filter_limits"

# One node of a tree: its path from the root, its depth (the root is 1), the number of
# values its ``value`` lists (0 when the value is not a list) and its ``type``.
Part = tuple[str, int, int, str]


def raw_parts(raw: Any) -> Iterator[Part]:
    """The parts of a decoded JSON tree, parents first (the order of ``tree.walk``).
    Anything not shaped like a tree is skipped: validation reports it afterwards."""
    stack: list[tuple[str, int, Any]] = [("", 1, raw)]
    while stack:
        here, depth, node = stack.pop()
        if not isinstance(node, dict):
            continue
        value = node.get("value")
        kind = node.get("type")
        yield here, depth, len(value) if isinstance(value, list) else 0, str(kind)
        children = node.get("filters")
        if kind in ("and", "or") and isinstance(children, list):
            prefix = f"{here}." if here else ""
            for i in reversed(range(len(children))):
                stack.append((f"{prefix}filters[{i}]", depth + 1, children[i]))
        elif kind == "not" and "filter" in node:
            stack.append((f"{here}.filter" if here else "filter", depth + 1, node["filter"]))


def enforce(parts: Iterable[Part]) -> None:
    """Raise a PydanticCustomError (type ``LIMITS``, ``path`` in its context) at the first
    part over a limit."""
    cost = values = history = 0
    largest: tuple[int, str] = (0, "")
    for nodes, (path, depth, listed, kind) in enumerate(parts, start=1):
        if depth > MAX_DEPTH:
            _refuse(path, "filters nest deeper than {limit} levels", limit=MAX_DEPTH)
        if nodes > MAX_NODES:
            _refuse(path, "a segment has at most {limit} filters", limit=MAX_NODES)
        history += kind in HISTORY_TYPES
        if history > MAX_HISTORY:
            _refuse(
                path,
                "a segment has at most {limit} conditions on issued promo codes (each one "
                "reads the whole history of issued codes); split the segment or combine "
                "these conditions into fewer",
                limit=MAX_HISTORY,
            )
        value_path = f"{path}.value" if path else "value"
        if listed > MAX_IN_VALUES:
            _refuse(
                value_path,
                "a list holds at most {limit} values, this one has {count}",
                limit=f"{MAX_IN_VALUES:,}",
                count=f"{listed:,}",
            )
        values += listed
        cost += NODE_COST + listed * VALUE_COST
        largest = max(largest, (listed, value_path))
        if cost > MAX_COST:
            _too_big(nodes, values, cost, largest)


def _too_big(nodes: int, values: int, cost: int, largest: tuple[int, str]) -> None:
    """The whole tree is over budget: name the longest list seen (the part to shorten)."""
    listed, path = largest
    _refuse(
        path,
        "the segment is too large: by here its conditions and lists count {cost} size "
        "points ({nodes} conditions, {values} listed values), over the {limit} a segment "
        "may have (each condition counts {node_cost}, each listed value {value_cost}); "
        "this list of {listed} values is the largest part — shorten it or split the "
        "segment into smaller ones",
        nodes=f"{nodes:,}",
        values=f"{values:,}",
        cost=f"{cost:,}",
        limit=f"{MAX_COST:,}",
        node_cost=NODE_COST,
        value_cost=VALUE_COST,
        listed=f"{listed:,}",
    )


def _refuse(path: str, message: str, **figures: Any) -> None:
    raise PydanticCustomError(LIMITS, message, {"path": path, **figures})

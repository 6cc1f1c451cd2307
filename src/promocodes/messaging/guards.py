"""The checks rewritten into every template (``sandbox.compile_template`` puts them in):
operators, output, ``~`` concatenation, loops and list, tuple and dict literals all draw
from the render's budget (``budget.py``) and are measured before they grow."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, markup_join, str_join
from jinja2.utils import pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer

from promocodes.messaging.budget import (
    MAX_INT_BITS,
    MAX_OUTPUT_CHARS,
    LimitExceeded,
    budget,
    check_size,
    ticking,
)

_SEQUENCES = (str, list, tuple)


def guard_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be too big, before Python builds it."""
    if operator == "%" and isinstance(left, str):
        # printf-style formatting reaches __str__/__repr__ of anything and pads freely.
        raise SecurityError("the % formatting operator is not available in messages")
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            sized = isinstance(seq, _SEQUENCES) and isinstance(times, int)
            if sized and len(seq) * max(times, 0) > MAX_OUTPUT_CHARS:
                raise LimitExceeded("a repeated string or list would be too long")
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise LimitExceeded("a number would be too large")
    sized = isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES)
    if operator == "+" and sized and len(left) + len(right) > MAX_OUTPUT_CHARS:
        raise LimitExceeded("a joined string or list would be too long")
    if operator == "**" and ints and right > 0 and left.bit_length() * right > MAX_INT_BITS:
        raise LimitExceeded("a power would be too large")


@pass_context
def finalize(context: Context, value: Any) -> Any:
    # Runs on every {{ ... }}, including those inside macros and {% set %} blocks,
    # which never reach the top-level output check. The common case (a str) is
    # measured and ticked inline: this is the hottest guard of a typical message.
    if value is None:
        return ""
    if type(value) is str:
        size = len(value)
        if size > MAX_OUTPUT_CHARS:
            check_size(value)  # raises
    else:
        size = check_size(value)
    current = budget()
    current.work += 1 + size
    if current.work >= current.next_check:
        current.check()
    return value


@pass_eval_context
def guard_concat(eval_ctx: nodes.EvalContext, *parts: Any) -> str:
    # The ~ operator is not an interceptable binop; templates are rewritten to call this.
    total = sum(check_size(part) for part in parts)
    if total > MAX_OUTPUT_CHARS:
        raise LimitExceeded("a joined string would be too long")
    current = budget()
    current.tick(total)
    joined = markup_join(parts) if eval_ctx.autoescape else str_join(parts)
    current.allocate(joined)
    return joined


def guard_iter(iterable: Iterable[Any], weight: int) -> Iterator[Any]:
    # Every {% for %} iterates through this: without it, nested loops over plain lists
    # spin with no call or output the budget could see. weight = the loop body's
    # literal text, which each iteration appends to some buffer.
    return ticking(iterable, 1 + weight)


# What building costs memory: text and containers (numbers are bounded by MAX_INT_BITS).
BUILT = (str, list, tuple, dict, set, frozenset)


def guard_literal(value: Any) -> Any:
    """A list, tuple or dict literal, charged to the memory budget: its items were
    charged when they were built, the container's slots now."""
    budget().allocate(value)
    return value


class Guards(NodeTransformer):
    """Rewrites a parsed template so loops, ~ concatenation and list, tuple and dict
    literals go through the guards."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        weight = sum(len(d.data) for c in node.body for d in c.find_all(nodes.TemplateData))
        iterable = cast(nodes.Expr, node.iter)
        node.iter = _environment_call("guard_iter", [iterable, nodes.Const(weight)], node)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _environment_call("guard_concat", list(node.nodes), node)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        return self._literal(node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        return self._literal(node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        if node.ctx != "load":  # a for loop's or a set's targets: no value is built
            return node
        return self._literal(node)

    def _literal(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return _environment_call("guard_literal", [node], node)


def _environment_call(name: str, args: list[nodes.Expr], at: nodes.Node) -> nodes.Call:
    call = nodes.Call(nodes.EnvironmentAttribute(name), args, [], None, None)
    call.set_lineno(at.lineno)
    return call

"""The filters a template may use: Jinja's own where they cannot amplify, bounded
versions of the others, and ``default`` as marketers know it; each call draws from the
render's budget and is measured."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from jinja2 import nodes
from jinja2.filters import do_batch, sync_do_join
from jinja2.runtime import Context, Undefined
from jinja2.utils import pass_context, pass_eval_context
from markupsafe import Markup, escape, soft_str

from promocodes.messaging.budget import (
    MAX_OUTPUT_CHARS,
    MAX_RANGE,
    LimitExceeded,
    approx_len,
    budget,
    check_size,
)
from promocodes.messaging.guards import BUILT


def default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """``default`` as marketers know it from Liquid: the fallback replaces missing data,
    a null field and an empty text (with ``boolean``, any false value)."""
    empty = isinstance(value, Undefined) or value is None or value == ""
    return default_value if empty or (boolean and not value) else value


@pass_eval_context
def _replace(eval_ctx: nodes.EvalContext, s: Any, old: Any, new: Any, count: Any = None) -> str:
    # Mirrors Jinja's replace but measures first: a chain of replaces multiplies the
    # length at each step, so checking only the result would be too late.
    if eval_ctx.autoescape:
        marked = hasattr(old, "__html__") or hasattr(new, "__html__")
        text = escape(s) if marked and not hasattr(s, "__html__") else soft_str(s)
        old_s, new_s = soft_str(old), soft_str(new)
    else:
        text, old_s, new_s = str(s), str(old), str(new)
    if isinstance(text, Markup):
        old_s, new_s = escape(old_s), escape(new_s)
    limit = -1 if count is None else int(count)
    hits = text.count(old_s) if old_s else len(text) + 1
    if limit >= 0:
        hits = min(hits, limit)
    if len(text) + hits * (len(new_s) - len(old_s)) > MAX_OUTPUT_CHARS:
        raise LimitExceeded("replace() would produce too long a string")
    return text.replace(old_s, new_s, limit)


@pass_eval_context
def _join(eval_ctx: nodes.EvalContext, value: Iterable[Any], d: Any = "") -> str:
    # No attribute= form: it would let a join pull big values out of many items.
    items = list(value)
    if approx_len(items) + check_size(d) * max(len(items) - 1, 0) > MAX_OUTPUT_CHARS:
        raise LimitExceeded("join() would produce too long a string")
    return sync_do_join(eval_ctx, items, d)


def _sum(iterable: Iterable[Any], start: Any = 0) -> Any:
    # Numbers only: summing lists concatenates them (quadratically, unmeasured).
    items = list(iterable)
    if not all(isinstance(item, int | float | Decimal) for item in (start, *items)):
        raise TypeError("sum adds numbers only")
    return sum(items, start)


def _batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    # The last batch is padded to linecount items, so a huge linecount is a huge list.
    if not isinstance(linecount, int) or linecount < 1:
        raise ValueError("batch size must be a positive number")
    if linecount > MAX_RANGE:
        raise LimitExceeded(f"batch size is limited to {MAX_RANGE:,}")
    return do_batch(value, linecount, fill_with)


# fmt: off
_PLAIN_FILTERS = (
    "abs", "capitalize", "count", "e", "escape", "first", "float", "int",
    "last", "length", "list", "lower", "max", "min", "reverse", "round", "sort", "string",
    "striptags", "title", "trim", "truncate", "unique", "upper", "urlencode", "wordcount",
)
# fmt: on
_BOUNDED_FILTERS: dict[str, Callable[..., Any]] = {
    "d": default,
    "default": default,
    "batch": _batch,
    "join": _join,
    "replace": _replace,
    "sum": _sum,
}


def _guard_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = getattr(getattr(func, "jinja_pass_arg", None), "name", None)

    # pass_context also stops Jinja from running the filter at compile time (constant
    # folding), where no budget applies.
    @pass_context
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        current = budget()
        current.tick()
        for arg in (value, *args, *kwargs.values()):
            check_size(arg)
        if pass_arg == "context":
            result = func(context, value, *args, **kwargs)
        elif pass_arg == "eval_context":
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg == "environment":
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        current.tick(check_size(result))
        if isinstance(result, BUILT):
            current.allocate(result)
        return result

    return guarded


def chosen(defaults: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """The filters of an environment, from Jinja's ``defaults``, each guarded."""
    picked = {name: defaults[name] for name in _PLAIN_FILTERS} | _BOUNDED_FILTERS
    return {name: _guard_filter(func) for name, func in picked.items()}

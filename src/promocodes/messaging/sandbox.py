"""The Jinja sandbox that renders marketer templates (untrusted input).

Threats handled here, beyond Jinja's own sandbox: reaching Python internals (attribute
policy), exhausting memory (every path that can grow a string or a list is measured
*before* it is built), and exhausting CPU (a per-message budget of time and work that
loops, calls, filters, operators and output all draw from). Jinja cannot interrupt a
running template, so every place a template can spin must check the budget itself:
loop iterations, calls, filters, operators and output.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from types import MethodType
from typing import Any, cast

from jinja2 import StrictUndefined, Template, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.filters import do_batch, sync_do_join
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, escape, soft_str

from promocodes.messaging.budget import (
    MAX_INT_BITS,
    MAX_OUTPUT_CHARS,
    MAX_RANGE,
    LimitExceeded,
    approx_len,
    bounded_range,
    budget,
    check_size,
    ticking,
)

MAX_TEMPLATE_CHARS = 100_000

FORBIDDEN_TAGS = "include/import/extends are not available in messages"
FORBIDDEN_SELF = "'self' is not available in messages"
FORBIDDEN_AUTOESCAPE = "{% autoescape %} is not available: customer data is always escaped in HTML"
TOO_COMPLEX = "the template is nested too deeply or is too complex"

# Only non-amplifying, side-effect-free methods: ljust/center/zfill/expandtabs/replace
# and join can multiply a string's size in one call, format/format_map reach
# attributes, encode/translate are useless here.
# fmt: off
_SAFE_STR_METHODS = frozenset((
    "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha",
    "isascii", "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle",
    "isupper", "lower", "lstrip", "partition", "removeprefix", "removesuffix", "rfind",
    "rindex", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith",
    "strip", "swapcase", "title", "upper",
))
# fmt: on
_SEQUENCES = (str, list, tuple)


class Exposed:
    """Base of objects handed to templates: only the names in ``_exposed`` are reachable."""

    __slots__ = ("_exposed",)

    def __init__(self, exposed: Collection[str]) -> None:
        self._exposed = frozenset(exposed)


def _guard_binop(operator: str, left: Any, right: Any) -> None:
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
def _finalize(context: Context, value: Any) -> Any:
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
def _guard_concat(eval_ctx: nodes.EvalContext, *parts: Any) -> str:
    # The ~ operator is not an interceptable binop; templates are rewritten to call this.
    total = sum(check_size(part) for part in parts)
    if total > MAX_OUTPUT_CHARS:
        raise LimitExceeded("a joined string would be too long")
    budget().tick(total)
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


def _guard_iter(iterable: Iterable[Any], weight: int) -> Iterator[Any]:
    # Every {% for %} iterates through this: without it, nested loops over plain lists
    # spin with no call or output the budget could see. weight = the loop body's
    # literal text, which each iteration appends to some buffer.
    return ticking(iterable, 1 + weight)


class _Guards(NodeTransformer):
    """Rewrites a parsed template so loops and ~ concatenation go through the guards."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        weight = sum(len(d.data) for c in node.body for d in c.find_all(nodes.TemplateData))
        iterable = cast(nodes.Expr, node.iter)
        node.iter = _environment_call("guard_iter", [iterable, nodes.Const(weight)], node)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _environment_call("guard_concat", list(node.nodes), node)


def _environment_call(name: str, args: list[nodes.Expr], at: nodes.Node) -> nodes.Call:
    call = nodes.Call(nodes.EnvironmentAttribute(name), args, [], None, None)
    call.set_lineno(at.lineno)
    return call


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
    "abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int",
    "last", "length", "list", "lower", "max", "min", "reverse", "round", "sort", "string",
    "striptags", "title", "trim", "truncate", "unique", "upper", "urlencode", "wordcount",
)
# fmt: on
_BOUNDED_FILTERS: dict[str, Callable[..., Any]] = {
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
        return result

    return guarded


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "//", "%"})
    guard_iter = staticmethod(_guard_iter)
    guard_concat = staticmethod(_guard_concat)

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(autoescape=autoescape, undefined=StrictUndefined, finalize=_finalize)
        # No loader: include/import/extends have nothing to load. Default globals
        # (dict, lipsum, cycler, joiner, namespace) go; range is replaced.
        self.globals.clear()
        self.globals["range"] = bounded_range
        defaults = self.filters
        chosen = {name: defaults[name] for name in _PLAIN_FILTERS} | _BOUNDED_FILTERS
        self.filters = {name: _guard_filter(func) for name, func in chosen.items()}

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Shortcut for the objects handed to templates, whose allow-list is the whole
        # policy: what super().getattr would conclude through is_safe_attribute below.
        if isinstance(obj, Exposed) and attribute in obj._exposed:
            try:
                return getattr(obj, attribute)
            except AttributeError:
                pass
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, Exposed):
            return attr in obj._exposed
        if isinstance(obj, str):
            return attr in _SAFE_STR_METHODS
        if isinstance(obj, int) and attr == "to_bytes":
            return False  # (1).to_bytes(10**9) allocates a gigabyte
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # Jinja would hand out a sandboxed str.format; refusing it in
        # is_safe_attribute is simpler than bounding its padding and field access.
        return None

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget().tick()
        _guard_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        # Every call in a template comes here: the place to stop runaway macro
        # recursion (by time, or by Python's recursion limit) and to count what
        # macros and methods return, since that may never reach the output.
        if obj is _guard_iter:  # our own loop guard (it ticks per item): no policy to apply
            return _guard_iter(*args)
        current = budget()
        current.tick()
        try:
            if isinstance(obj, MethodType) and _exposed_method(obj):
                # client.promocode(…) and the like: our own methods, on the allow-list,
                # taking no context; Jinja's generic checks and dispatch would only
                # conclude what the allow-list says, at a cost per message.
                result = obj(*args, **kwargs)
            else:
                result = super().call(context, obj, *args, **kwargs)
        except RecursionError as exc:
            raise LimitExceeded("the template nests calls too deeply") from exc
        if isinstance(result, str):
            current.tick(check_size(result))
        return result


def _exposed_method(method: MethodType) -> bool:
    owner = method.__self__
    return isinstance(owner, Exposed) and method.__name__ in owner._exposed


ENVIRONMENTS = {False: _Sandbox(autoescape=False), True: _Sandbox(autoescape=True)}


@dataclass(frozen=True)
class CompileFailure:
    message: str
    lineno: int | None


def forbidden(tree: nodes.Template) -> Iterator[tuple[nodes.Node, str]]:
    """Constructs refused in messages, wherever they appear."""
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        yield node, FORBIDDEN_TAGS
    for node in tree.find_all(nodes.EvalContextModifier):  # the {% autoescape %} tag
        yield node, FORBIDDEN_AUTOESCAPE
    for name in tree.find_all(nodes.Name):
        if name.name == "self":  # renders blocks of the template: no use, more surface
            yield name, FORBIDDEN_SELF


@lru_cache(maxsize=64)
def compile_template(source: str, *, html: bool) -> Template | CompileFailure:
    """Compile (cached: a mailing renders one template thousands of times)."""
    env = ENVIRONMENTS[html]
    try:
        tree = env.parse(source)
        for node, message in forbidden(tree):
            raise TemplateSyntaxError(message, node.lineno)
        guarded = _Guards().visit(tree)
        guarded.set_environment(env)
        return env.from_string(guarded)
    except TemplateSyntaxError as exc:
        return CompileFailure(exc.message or "syntax error", exc.lineno)
    except ValueError as exc:  # e.g. Python's limit on digits in an int literal
        return CompileFailure(f"the template cannot be read: {exc}", None)
    except Exception:  # recursion in Jinja, Python's compiler limits (nested blocks)
        return CompileFailure(TOO_COMPLEX, None)


def run(template: Template, variables: Mapping[str, Any]) -> str:
    """Render under the active budget, checking the message's size at every chunk.

    What Template.render does (the root render function joined, Jinja's traceback
    rewriting on errors), with a running length per chunk: a template that loops out
    text stops at MAX_OUTPUT_CHARS, holding no more than that. Time is not checked
    here: every way to repeat output (loops, calls) draws from the budget itself, and
    every {{ ... }} does in _finalize.
    """
    current = budget()
    env = template.environment
    # Template.new_context, without its two passes over a ChainMap of the globals: the
    # templates come from compile_template, which gives them no globals of their own.
    context = env.context_class(
        env, {**env.globals, **variables}, template.name, template.blocks, env.globals
    )
    chunks = template.root_render_func(context)
    parts: list[str] = []
    append = parts.append
    total = current.output
    try:
        for chunk in chunks:
            total += len(chunk)
            if total > MAX_OUTPUT_CHARS:
                break
            append(chunk)
    except Exception:
        template.environment.handle_exception()
    finally:
        if isinstance(chunks, Generator):
            chunks.close()
        current.output = total
    if total > MAX_OUTPUT_CHARS:
        raise LimitExceeded(f"the message is longer than {MAX_OUTPUT_CHARS:,} characters")
    return "".join(parts)

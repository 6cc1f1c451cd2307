"""The Jinja sandbox that renders marketer templates (untrusted input).

Threats handled here, beyond Jinja's own sandbox: reaching Python internals (attribute
policy), exhausting memory (every path that can grow a string or a list is measured
*before* it is built), and exhausting CPU (a per-message budget of time and work that
loops, calls, filters, operators and output all draw from). Jinja cannot interrupt a
running template, so every place a template can spin must check the budget itself:
loop iterations, calls, filters, operators and output.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MethodType
from typing import Any

from jinja2 import ChainableUndefined, Template, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from promocodes.messaging import template_filters
from promocodes.messaging.budget import (
    MAX_OUTPUT_CHARS,
    LimitExceeded,
    bounded_range,
    budget,
    check_size,
)
from promocodes.messaging.guards import (
    BUILT,
    Guards,
    finalize,
    guard_binop,
    guard_concat,
    guard_iter,
    guard_literal,
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


class Exposed:
    """Base of objects handed to templates: only the names in ``_exposed`` are reachable."""

    __slots__ = ("_exposed",)

    def __init__(self, exposed: Collection[str]) -> None:
        self._exposed = frozenset(exposed)


class Missing(ChainableUndefined):
    """Missing data, as Liquid (the language of Braze, Klaviyo, Shopify) treats it: an
    attribute the customer lacks, a field that is null, and anything read through them
    render as '', are false in ``{% if %}``, loop zero times and can be read further
    (``client.attributes.address.city``). Names that cannot exist (an unknown customer
    field or group) are refused when the template is saved, not here. Comparing it
    (``> 18``) is false; arithmetic on it still fails (``template-error``, with its line:
    ``| default(0)`` gives a number).

    An access the sandbox refused (``client.__class__``) is no missing data: it raises
    its SecurityError on any use, as Jinja's strict undefined does."""

    __slots__ = ()

    def _refused(self) -> bool:
        return self._undefined_exception is SecurityError

    def __str__(self) -> str:
        if self._refused():
            self._fail_with_undefined_error()
        return ""

    def __html__(self) -> str:
        return str(self)

    def __bool__(self) -> bool:
        if self._refused():
            self._fail_with_undefined_error()
        return False

    def __iter__(self) -> Iterator[Any]:
        if self._refused():
            self._fail_with_undefined_error()
        return iter(())

    def __len__(self) -> int:
        if self._refused():
            self._fail_with_undefined_error()
        return 0

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__" or self._refused():
            self._fail_with_undefined_error()
        return self

    __getitem__ = __getattr__

    def _compare(self, other: object) -> bool:
        # {% if client.attributes.age > 18 %} is false for a customer without an age,
        # as in Liquid: comparing with missing data is no error.
        if self._refused():
            self._fail_with_undefined_error()
        return False

    # Jinja types Undefined's compares as always raising (-> Never); these answer False
    # instead, which no signature can express as an override: hence the ignore.
    __lt__ = __le__ = __gt__ = __ge__ = _compare  # type: ignore[assignment]


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "//", "%"})
    guard_iter = staticmethod(guard_iter)
    guard_concat = staticmethod(guard_concat)
    guard_literal = staticmethod(guard_literal)

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(autoescape=autoescape, undefined=Missing, finalize=finalize)
        # No loader: include/import/extends have nothing to load. Default globals
        # (dict, lipsum, cycler, joiner, namespace) go; range is replaced.
        self.globals.clear()
        self.globals["range"] = bounded_range
        self.filters = template_filters.chosen(self.filters)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute[:1] == "_":
            # Refused whether it exists or not: a name that does not exist would
            # otherwise read as missing data (empty), hiding a probe of the internals.
            return self.unsafe_undefined(obj, attribute)
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
        current = budget()
        current.tick()
        guard_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, BUILT):
            current.allocate(result)
        return result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        # Every call in a template comes here: the place to stop runaway macro
        # recursion (by time, or by Python's recursion limit) and to count what
        # macros and methods return, since that may never reach the output.
        if obj is guard_iter:  # our own loop guard (it ticks per item): no policy to apply
            return guard_iter(*args)
        if obj is guard_literal:
            return guard_literal(*args)
        current = budget()
        current.tick()
        try:
            if isinstance(obj, MethodType) and _exposed_method(obj):
                # client.promocode(…) and the like: our own methods, on the allow-list,
                # taking no context; Jinja's generic checks and dispatch would only
                # conclude what the allow-list says, at a cost per message. Inside a
                # loop or a block Jinja adds its own keywords (what Context.call drops).
                kwargs.pop("_loop_vars", None)
                kwargs.pop("_block_vars", None)
                result = obj(*args, **kwargs)
            else:
                result = super().call(context, obj, *args, **kwargs)
        except RecursionError as exc:
            raise LimitExceeded("the template nests calls too deeply") from exc
        if isinstance(result, str):
            current.tick(check_size(result))
        if isinstance(result, BUILT):
            current.allocate(result)
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
        guarded = Guards().visit(tree)
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
    every {{ ... }} does in finalize.
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

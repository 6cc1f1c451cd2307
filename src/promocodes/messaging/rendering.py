"""Marketer message templates: validation at save time, rendering per recipient, preview.

Pure: no database. Codes come from a :class:`CodeSource` the caller implements; the
sandbox itself (limits, attribute policy) lives in :mod:`promocodes.messaging.sandbox`.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from functools import lru_cache
from typing import Protocol

from jinja2 import Template, meta, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

from promocodes.codes.models import name_key
from promocodes.messaging.sandbox import (
    ENVIRONMENTS,
    MAX_OUTPUT_CHARS,
    MAX_TEMPLATE_CHARS,
    RENDER_SECONDS,
    TOO_COMPLEX,
    CompileFailure,
    Exposed,
    LimitExceeded,
    budget,
    budgeted,
    compile_template,
    forbidden,
    run,
)

__all__ = [
    "MAX_OUTPUT_CHARS",
    "MAX_TEMPLATE_CHARS",
    "RENDER_SECONDS",
    "CodeSource",
    "MessageTemplate",
    "Problem",
    "RenderSkip",
    "Rendered",
    "TemplateError",
    "Validation",
    "preview",
    "render",
    "validate",
]

_DETAIL_CHARS = 500  # details are logged and shown in reports; user data can be huge


class RenderSkip(Exception):
    """This recipient's message is not sent; ``reason`` is a short stable text."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TemplateError(RenderSkip):
    """The template failed for this recipient: reason is "template-error",
    "template-limit" or "security". A RenderSkip, so callers can catch one type."""


class _SourceFailure(Exception):
    """Carries an unexpected CodeSource error (say, the database is down) through Jinja,
    so it reaches the caller as itself instead of as a template error."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class CodeSource(Protocol):
    def promocode(self, group_name: str) -> str:
        """Initial issue; raises RenderSkip when the group is exhausted or expired."""
        ...

    def last_promocode(self, group_name: str) -> str | None:
        """Repeat issue; None when the customer never got a code from the group."""
        ...


@dataclass(frozen=True)
class MessageTemplate:
    subject: str = ""
    body_text: str | None = None
    body_html: str | None = None


@dataclass(frozen=True)
class Rendered:
    subject: str
    body_text: str | None
    body_html: str | None


class _Client(Exposed):
    """The ``client`` template variable: customer fields, ``attributes`` and the macros.

    Codes are memoised per (kind, group) for the whole message, so a group used in the
    subject and the body issues once. Macros run only when their branch renders.
    """

    __slots__ = ("_fields", "_issued", "_source", "attributes")

    def __init__(self, data: Mapping[str, object], source: CodeSource) -> None:
        attributes = data.get("attributes")
        self.attributes = dict(attributes) if isinstance(attributes, Mapping) else {}
        self._fields = {key: value for key, value in data.items() if key != "attributes"}
        self._source = source
        self._issued: dict[tuple[str, str], str | None] = {}
        super().__init__(_exposed_names(tuple(self._fields)))

    def __getattr__(self, name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return "<client>"

    def promocode(self, group_name: str) -> str:
        return self._issue("initial", group_name) or ""

    def last_promocode(self, group_name: str) -> str:
        # '' when never issued: prints nothing and is falsy in {% if %}.
        return self._issue("repeat", group_name) or ""

    def _issue(self, kind: str, group_name: object) -> str | None:
        if not isinstance(group_name, str):
            raise TypeError("the group name must be text, e.g. client.promocode('Summer 10%')")
        key = (kind, name_key(group_name))
        if key not in self._issued:
            started = time.monotonic()
            try:
                if kind == "initial":
                    self._issued[key] = self._source.promocode(group_name)
                else:
                    self._issued[key] = self._source.last_promocode(group_name)
            except RenderSkip:
                raise
            except Exception as exc:
                raise _SourceFailure(exc) from exc
            finally:
                # The time limit is for the template's own work; a slow issuance
                # (database) must not turn into a "template-limit" skip.
                budget().deadline += time.monotonic() - started
        return self._issued[key]


@lru_cache(maxsize=64)
def _exposed_names(fields: tuple[str, ...]) -> frozenset[str]:
    # Every recipient of a mailing has the same fields: one set for all of them. A
    # field named like a private attribute would expose that attribute, not the field.
    public = (name for name in fields if not name.startswith("_"))
    return frozenset({*public, "attributes", "promocode", "last_promocode"})


class _PreviewSource:
    """Placeholder codes that can never be mistaken for real ones and touch no store."""

    def promocode(self, group_name: str) -> str:
        digest = hashlib.sha256(name_key(group_name).encode()).hexdigest()[:4].upper()
        return f"PREVIEW-{_slug(group_name)}-{digest}"

    def last_promocode(self, group_name: str) -> str | None:
        return f"PREVIEW-{_slug(group_name)}-LAST"


def _slug(group_name: str) -> str:
    slug = re.sub(r"[\W_]+", "-", unicodedata.normalize("NFKC", group_name)).strip("-")
    return slug.upper()[:24].strip("-") or "GROUP"


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_CHARS else text[:_DETAIL_CHARS] + "…"


def _compile(field: str, text: str, *, html: bool) -> Template:
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError("template-limit", f"{field}: longer than {MAX_TEMPLATE_CHARS:,}")
    compiled = compile_template(text, html=html)
    if isinstance(compiled, CompileFailure):
        where = f" (line {compiled.lineno})" if compiled.lineno else ""
        raise TemplateError("template-error", _short(f"{field}{where}: {compiled.message}"))
    return compiled


@lru_cache(maxsize=64)
def _compiled_fields(template: MessageTemplate) -> tuple[tuple[str, Template], ...]:
    # Per message template (a mailing renders one for every recipient); a template
    # that fails to compile raises, which lru_cache does not keep.
    return tuple(
        (name, _compile(name, text, html=name == "body_html"))
        for name in ("subject", "body_text", "body_html")
        if (text := getattr(template, name)) is not None
    )


def _run(field: str, template: Template, client: _Client) -> str:
    try:
        return run(template, {"client": client})
    except RenderSkip:
        raise
    except _SourceFailure as exc:
        failure = exc.error  # re-raised below, outside the handler, unchained
    except (LimitExceeded, RecursionError, MemoryError) as exc:
        raise TemplateError("template-limit", _short(f"{field}: {exc}")) from exc
    except SecurityError as exc:
        raise TemplateError("security", _short(f"{field}: {exc}")) from exc
    except UndefinedError as exc:
        message = str(exc).replace(f"'{__name__}._Client object'", "client")
        raise TemplateError("template-error", _short(f"{field}: {message}")) from exc
    except Exception as exc:  # TypeError, ZeroDivisionError, ...: this recipient only
        message = f"{field}: {type(exc).__name__}: {exc}"
        raise TemplateError("template-error", _short(message)) from exc
    raise failure


def render(template: MessageTemplate, client: Mapping[str, object], source: CodeSource) -> Rendered:
    """Render one message (subject and bodies together) for one recipient.

    ``client`` maps customer fields (``customer_id``, ``email``, ``first_name``, …) to
    values, plus optionally ``attributes`` (a mapping). Raises :class:`RenderSkip` (the
    source's own, e.g. "group-exhausted") or :class:`TemplateError` when the message
    must not be sent; codes the source issued before the failure are the caller's to
    roll back. The subject is collapsed to one line (no header injection).
    """
    person = _Client(client, source)
    # Compiled first (and cached), outside the time limit: compiling a large template
    # once must not make the first recipient of a mailing time out.
    fields = _compiled_fields(template)
    out: dict[str, str | None] = {"body_text": None, "body_html": None}
    with budgeted(RENDER_SECONDS):
        for name, compiled in fields:
            out[name] = _run(name, compiled, person)
    return Rendered(" ".join((out["subject"] or "").split()), out["body_text"], out["body_html"])


def preview(template: MessageTemplate, client: Mapping[str, object]) -> Rendered:
    """Render with placeholder codes ``PREVIEW-<GROUP>-<4 hex>`` / ``PREVIEW-<GROUP>-LAST``;
    no code is issued or recorded. Unknown groups get placeholders too (validate() is
    what reports them). Raises like :func:`render`."""
    return render(template, client, _PreviewSource())


# --- validation (when a template is saved) ---------------------------------------------

_MACROS = ("promocode", "last_promocode")
_MAX_PROBLEMS = 100
_TOO_MANY = f"too many problems: only the first {_MAX_PROBLEMS} are listed"
_LITERAL_HINT = (
    "the group name must be a literal in single quotes, e.g. client.promocode('Summer 10%')"
)
_QUOTES = "‘’‚‛“”„‟«»‹›＇＂`´′″"
# A typographic quote opening or closing a macro argument (word processors "fix" them).
_CURLY = re.compile(
    rf"promocode\s*\(\s*(?P<open>[{_QUOTES}])|promocode\s*\(\s*'[^'\n]*?(?P<close>[{_QUOTES}])\s*\)"
)
# Cyrillic/Greek letters that look Latin (after casefold): a name typed on the wrong
# keyboard layout should still get a "did you mean".
_LOOKALIKES = str.maketrans("авекмнорстухѕіјαβεζηικμνορτυχ", "abekmhopctyxsijabezhikmnoptyx")
_TAG_KEYWORDS: dict[type[nodes.Node], str] = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from",
    nodes.Extends: "extends",
    nodes.EvalContextModifier: "autoescape",
    nodes.ScopedEvalContextModifier: "autoescape",
}


@dataclass(frozen=True)
class Problem:
    field: str  # "subject" | "body_text" | "body_html"
    line: int | None
    column: int | None  # 1-based, best effort
    message: str


@dataclass(frozen=True)
class Validation:
    problems: list[Problem]
    groups: list[str]  # distinct (case-insensitively), first spelling as written
    initial_groups: list[str]  # used with promocode(): a mailing reserves codes for these

    @property
    def valid(self) -> bool:
        return not self.problems


def _fold(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold().translate(_LOOKALIKES)
    return " ".join(folded.split())


def _folds(names: Iterable[str]) -> dict[str, str]:
    by_fold: dict[str, str] = {}
    for name in names:
        by_fold.setdefault(_fold(name), name)
    return by_fold


def _did_you_mean(name: str, by_fold: dict[str, str]) -> str:
    folded = _fold(name)
    close = [folded] if folded in by_fold else get_close_matches(folded, list(by_fold), 1, 0.75)
    return f"; did you mean '{by_fold[close[0]]}'?" if close else ""


class _Checker:
    def __init__(self, known_groups: Collection[str], customer_fields: Collection[str]) -> None:
        self.known = {name_key(name): name for name in known_groups}
        self.fields = {*customer_fields, "attributes"}
        self.group_folds, self.field_folds = _folds(known_groups), _folds(self.fields)
        self.problems: list[Problem] = []
        self.seen: set[Problem] = set()
        self.groups: dict[str, str] = {}
        self.initial: dict[str, str] = {}
        self.field, self.lines = "", [""]
        self.columns: dict[tuple[int, str, bool], int | None] = {}
        self.hints: dict[tuple[str, bool], str] = {}

    def add(self, line: int | None, column: int | None, message: str) -> None:
        # Capped: a hostile template could otherwise make validation itself slow.
        problem = Problem(self.field, line, column, message)
        if len(self.problems) < _MAX_PROBLEMS and problem not in self.seen:
            self.seen.add(problem)
            self.problems.append(problem)
            if len(self.problems) == _MAX_PROBLEMS:
                self.problems.append(Problem(self.field, None, None, _TOO_MANY))

    def hint(self, name: str, *, group: bool) -> str:
        if len(self.problems) >= _MAX_PROBLEMS:
            return ""
        if (name, group) not in self.hints:  # difflib over many groups is slow
            by_fold = self.group_folds if group else self.field_folds
            self.hints[name, group] = _did_you_mean(name, by_fold)
        return self.hints[name, group]

    def column(self, line: int | None, needle: str, *, word: bool = False) -> int | None:
        if line is None or not 0 < line <= len(self.lines) or not needle:
            return None
        if len(self.problems) >= _MAX_PROBLEMS:
            return None  # not reported anyway; searching long lines costs time
        key = (line, needle, word)
        if key not in self.columns:
            self.columns[key] = self._search(line, needle, word=word)
        return self.columns[key]

    def _search(self, line: int, needle: str, *, word: bool) -> int | None:
        text = self.lines[line - 1]
        tags = [pos for pos in (text.find("{{"), text.find("{%")) if pos >= 0]
        pattern = re.escape(needle)
        if word:
            pattern = rf"(?<!\w){pattern}(?!\w)"
        found = re.compile(pattern).search(text, min(tags, default=0))
        return found.start() + 1 if found else None

    def check(self, field: str, source: str) -> None:
        self.field, self.columns = field, {}
        first = len(self.problems)
        if len(source) > MAX_TEMPLATE_CHARS:
            limit = f"{len(source):,} characters; the limit is {MAX_TEMPLATE_CHARS:,}"
            return self.add(None, None, f"the template is too long ({limit})")
        text = re.sub(r"\r\n?", "\n", source)  # as Jinja's lexer counts offsets
        self.lines = text.split("\n")
        for quote in _CURLY.finditer(text):
            offset = quote.start("open") if quote["open"] else quote.start("close")
            line = text.count("\n", 0, offset) + 1
            column = offset - text.rfind("\n", 0, offset)
            self.add(line, column, "use straight single quotes ' in the macro")
        if len(self.problems) == first:
            self._check_parsed(text, html=field == "body_html")
        self.problems[first:] = sorted(self.problems[first:], key=_position)

    def _check_parsed(self, text: str, *, html: bool) -> None:
        try:
            tree = ENVIRONMENTS[html].parse(text)
            self._check_tree(tree)
        except TemplateSyntaxError as exc:
            return self._syntax_error(text, exc.message or "syntax error", exc.lineno)
        except RecursionError:  # Jinja's parser and node walks are recursive
            return self.add(None, None, TOO_COMPLEX)
        except ValueError:
            pass  # a literal Python refuses (a 5,000-digit number): compiling says so
        compiled = compile_template(text, html=html)
        reported = {problem.message for problem in self.problems}
        if isinstance(compiled, CompileFailure) and compiled.message not in reported:
            self._syntax_error(text, compiled.message, compiled.lineno)

    def _check_tree(self, tree: nodes.Template) -> None:
        for node, message in forbidden(tree):
            needle = _TAG_KEYWORDS.get(type(node), "self")
            self.add(node.lineno, self.column(node.lineno, needle, word=True), message)
        first_use: dict[str, int] = {}
        stack: list[tuple[nodes.Node, nodes.Node | None]] = [(tree, None)]
        while stack:
            node, parent = stack.pop()
            if isinstance(node, nodes.Name):
                first_use.setdefault(node.name, node.lineno)
            self._visit(node, parent)
            stack.extend((child, node) for child in reversed(list(node.iter_child_nodes())))
        try:
            undeclared = meta.find_undeclared_variables(tree) - {"client"}
        except TemplateSyntaxError:
            undeclared = set()  # e.g. an unknown filter: the compile step reports it
        for name in undeclared:
            line = first_use.get(name)
            message = f"unknown variable '{name}': a message can use client (and range)"
            self.add(line, self.column(line, name, word=True), message)

    def _syntax_error(self, text: str, message: str, line: int | None) -> None:
        at = re.search(r" at (\d+)$", message)
        if message.startswith("unexpected char") and at:
            offset = int(at[1])
            line = text.count("\n", 0, offset) + 1
            return self.add(line, offset - text.rfind("\n", 0, offset), message)
        column = None
        for token in re.findall(r"'([^']+)'", message):
            column = column or self.column(line, token)
        self.add(line, column or self.column(line, "{%") or self.column(line, "{{"), message)

    def _visit(self, node: nodes.Node, parent: nodes.Node | None) -> None:
        line = node.lineno
        if isinstance(node, nodes.Name) and node.name == "client":
            if node.ctx != "load":
                self.add(line, self.column(line, "client", word=True), "'client' is reserved")
            elif not (isinstance(parent, nodes.Getattr) and parent.node is node):
                hint = "use client.<field> (e.g. client.first_name) or client.promocode('Group')"
                self.add(line, self.column(line, "client", word=True), hint)
        elif isinstance(node, nodes.Getattr):
            self._getattr(node, parent)
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            target = node.node
            on_client = isinstance(target.node, nodes.Name) and target.node.name == "client"
            if on_client and target.attr in _MACROS:
                self._macro_call(node, target.attr)

    def _getattr(self, node: nodes.Getattr, parent: nodes.Node | None) -> None:
        attr = node.attr
        if attr.startswith("_"):
            message = f"'{attr}': names starting with _ are not available"
        elif not (isinstance(node.node, nodes.Name) and node.node.name == "client"):
            return
        elif attr in _MACROS:
            if isinstance(parent, nodes.Call) and parent.node is node:
                return
            message = f"call the macro: client.{attr}('Summer 10%')"
        elif attr not in self.fields:
            message = f"unknown customer field '{attr}'{self.hint(attr, group=False)}"
        else:
            return
        self.add(node.lineno, self.column(node.lineno, attr, word=True), message)

    def _macro_call(self, call: nodes.Call, macro: str) -> None:
        line = call.lineno
        arg = call.args[0] if len(call.args) == 1 else None
        extra = call.kwargs or call.dyn_args or call.dyn_kwargs
        if extra or not isinstance(arg, nodes.Const) or not isinstance(arg.value, str):
            return self.add(line, self.column(line, macro, word=True), _LITERAL_HINT)
        name: str = arg.value
        key = name_key(name)
        self.groups.setdefault(key, name)
        if macro == "promocode":
            self.initial.setdefault(key, name)
        if key not in self.known:
            written = name.replace("\\", "\\\\").replace("'", "\\'")
            column = self.column(line, f"'{written}'") or self.column(line, macro, word=True)
            hint = self.hint(name, group=True)
            self.add(line, column, f"unknown promo code group '{name}'{hint}")


def _position(problem: Problem) -> tuple[int, int]:
    return problem.line or 0, problem.column or 0


def validate(
    template: MessageTemplate,
    *,
    known_groups: Collection[str],
    customer_fields: Collection[str],
) -> Validation:
    """Check a template when it is saved; nothing may be sent while problems remain.

    ``known_groups`` are the live group names; a macro's group matches one when equal
    after trimming and casefolding (``client.promocode('summer 10%')`` finds "Summer
    10%"). ``customer_fields`` are the fields ``client.<name>`` may use (besides
    ``attributes`` and the two macros). Lines and columns are 1-based; the column is a
    best effort (Jinja reports only lines) and None when unknown.
    """
    checker = _Checker(known_groups, customer_fields)
    for field in ("subject", "body_text", "body_html"):
        source = getattr(template, field)
        if source is not None:
            checker.check(field, source)
    groups = list(checker.groups.values())
    return Validation(checker.problems, groups, list(checker.initial.values()))

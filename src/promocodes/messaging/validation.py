"""Validating a marketer's template when it is saved: syntax, unknown names and groups
(with did-you-mean), and the groups it issues from. Pure: the caller passes the live
groups' names and the customer fields."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from difflib import get_close_matches

from jinja2 import meta, nodes
from jinja2.exceptions import TemplateSyntaxError

from promocodes.codes.models import name_key
from promocodes.messaging.rendering import MessageTemplate
from promocodes.messaging.sandbox import (
    ENVIRONMENTS,
    MAX_TEMPLATE_CHARS,
    TOO_COMPLEX,
    CompileFailure,
    compile_template,
    forbidden,
)

# --- validation (when a template is saved) ---------------------------------------------

_MACROS = ("promocode", "last_promocode", "benefit")
_MAX_PROBLEMS = 100
_TOO_MANY = f"too many problems: only the first {_MAX_PROBLEMS} are listed"
_LITERAL_HINT = (
    "the group name must be a literal in single quotes, e.g. client.promocode('Summer 10%')"
)
_QUOTES = "‘’‚‛“”„‟«»‹›＇＂`´′″"
# A typographic quote opening or closing a macro argument (word processors "fix" them).
_CURLY = re.compile(
    rf"(?:promocode|benefit)\s*\(\s*(?P<open>[{_QUOTES}])"
    rf"|(?:promocode|benefit)\s*\(\s*'[^'\n]*?(?P<close>[{_QUOTES}])\s*\)"
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
        self.archived: set[str] = set()
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
            if key in self.archived:
                message = f"the promo code group '{name}' is archived: choose a live group"
                return self.add(line, column, message)
            hint = self.hint(name, group=True)
            self.add(line, column, f"unknown promo code group '{name}'{hint}")


def _position(problem: Problem) -> tuple[int, int]:
    return problem.line or 0, problem.column or 0


def validate(
    template: MessageTemplate,
    *,
    known_groups: Collection[str],
    customer_fields: Collection[str],
    archived_groups: Collection[str] = (),
) -> Validation:
    """Check a template when it is saved; nothing may be sent while problems remain.

    ``known_groups`` are the live group names; a macro's group matches one when equal
    after trimming and casefolding (``client.promocode('summer 10%')`` finds "Summer
    10%"). ``customer_fields`` are the fields ``client.<name>`` may use (besides
    ``attributes`` and the two macros). ``archived_groups`` are name keys of archived
    groups: a macro naming one is told the group is archived, not that it is unknown.
    Lines and columns are 1-based; the column is a best effort (Jinja reports only
    lines) and None when unknown.
    """
    checker = _Checker(known_groups, customer_fields)
    checker.archived = set(archived_groups)
    for field in ("subject", "body_text", "body_html"):
        source = getattr(template, field)
        if source is not None:
            checker.check(field, source)
    groups = list(checker.groups.values())
    return Validation(checker.problems, groups, list(checker.initial.values()))

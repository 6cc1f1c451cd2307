"""Marketer message templates: validation at save time, rendering per recipient, preview.

Pure: no database. Codes come from a :class:`CodeSource` the caller implements; the
sandbox itself (limits, attribute policy) lives in :mod:`promocodes.messaging.sandbox`.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from collections.abc import Container, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Protocol

from jinja2 import Template
from jinja2.exceptions import SecurityError, UndefinedError

from promocodes.codes.models import name_key
from promocodes.messaging.budget import (
    MAX_OUTPUT_CHARS,
    RENDER_SECONDS,
    LimitExceeded,
    budget,
    budgeted,
)
from promocodes.messaging.sandbox import (
    MAX_TEMPLATE_CHARS,
    CompileFailure,
    Exposed,
    compile_template,
    run,
)

__all__ = [
    "MAX_OUTPUT_CHARS",
    "MAX_TEMPLATE_CHARS",
    "RENDER_SECONDS",
    "CodeSource",
    "MessageTemplate",
    "RenderSkip",
    "Rendered",
    "TemplateError",
    "preview",
    "render",
]

_DETAIL_CHARS = 500  # details are logged and shown in reports; user data can be huge


class RenderSkip(Exception):
    """This recipient's message is not sent. ``reason`` is a short stable slug,
    ``detail`` what happened in words; ``field`` and ``line`` where in the template
    (when known: a macro's group that cannot give a code, a failing expression)."""

    def __init__(
        self, reason: str, detail: str = "", *, field: str | None = None, line: int | None = None
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.field = field
        self.line = line
        super().__init__(f"{reason}: {self.summary}")

    @property
    def where(self) -> str:
        """``body_text line 4``, ``subject``, or '' when not known."""
        return " ".join(
            part for part in (self.field, f"line {self.line}" if self.line else None) if part
        )

    @property
    def summary(self) -> str:
        """What to store and show: where, then what (``body_text line 4: …``)."""
        return _short(f"{self.where}: {self.detail}" if self.where else self.detail)

    def at(self, field: str, line: int | None) -> RenderSkip:
        """The same skip, placed in the template (kept if already placed)."""
        if self.field is not None:
            return self
        return type(self)(self.reason, self.detail, field=field, line=line)


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

    def benefit(self, group_name: str) -> str:
        """The group's benefit in words; takes no code."""
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
    # A preview's notes: which values are placeholders, why a macro renders empty.
    notes: tuple[str, ...] = ()
    # A preview's groups the message takes a new code from (promocode() rendered).
    drawn: tuple[str, ...] = ()


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

    def benefit(self, group_name: str) -> str:
        # What a code of the group gives, in words: no code is taken or recorded.
        if not isinstance(group_name, str):
            raise TypeError("the group name must be text, e.g. client.benefit('Summer 10%')")
        try:
            return self._source.benefit(group_name)
        except RenderSkip:
            raise
        except Exception as exc:
            raise _SourceFailure(exc) from exc

    def _issue(self, kind: str, group_name: object) -> str | None:
        if not isinstance(group_name, str):
            raise TypeError("the group name must be text, e.g. client.promocode('Summer 10%')")
        group = name_key(group_name)
        if kind == "repeat" and ("initial", group) in self._issued:
            # promocode('G') earlier in this message: that code is now the customer's
            # last one from G (SPEC §2), whatever an earlier message gave them.
            return self._issued["initial", group]
        key = (kind, group)
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
    return frozenset({*public, "attributes", "promocode", "last_promocode", "benefit"})


class _PreviewSource:
    """Placeholder codes that can never be mistaken for real ones and touch no store.

    ``last`` is the name keys of the groups the customer holds a last code from (a real
    customer): ``last_promocode`` shows a placeholder for those and, like the sent
    message, nothing for the others. None is the sample customer, who holds one of
    every group. ``notes`` say what the placeholders stand for and why a macro is empty.
    """

    def __init__(self, last: Container[str] | None, benefits: Mapping[str, str]) -> None:
        self._last = last
        self._benefits = benefits
        self.notes: list[str] = []
        self.drawn: list[str] = []

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def promocode(self, group_name: str) -> str:
        digest = hashlib.sha256(name_key(group_name).encode()).hexdigest()[:4].upper()
        code = f"PREVIEW-{_slug(group_name)}-{digest}"
        self._note(f"{code} stands for the new code from '{group_name}' each customer gets.")
        self.drawn.append(group_name)
        return code

    def last_promocode(self, group_name: str) -> str | None:
        if self._last is not None and name_key(group_name) not in self._last:
            self._note(
                f"This customer has no code from '{group_name}' yet: "
                f"last_promocode('{group_name}') is empty for them, in the sent message too."
            )
            return None
        code = f"PREVIEW-{_slug(group_name)}-LAST"
        self._note(f"{code} stands for the customer's last code from '{group_name}'.")
        return code

    def benefit(self, group_name: str) -> str:
        # The real text: a benefit is the same for every customer and takes no code.
        return self._benefits.get(name_key(group_name), "")


def _slug(group_name: str) -> str:
    slug = re.sub(r"[\W_]+", "-", unicodedata.normalize("NFKC", group_name)).strip("-")
    return slug.upper()[:24].strip("-") or "GROUP"


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_CHARS else text[:_DETAIL_CHARS] + "…"


def _compile(field: str, text: str, *, html: bool) -> Template:
    if len(text) > MAX_TEMPLATE_CHARS:
        detail = f"longer than {MAX_TEMPLATE_CHARS:,} characters"
        raise TemplateError("template-limit", detail, field=field)
    compiled = compile_template(text, html=html)
    if isinstance(compiled, CompileFailure):
        detail = _short(compiled.message)
        raise TemplateError("template-error", detail, field=field, line=compiled.lineno)
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


def _template_line(exc: BaseException) -> int | None:
    """The template line the error came from: Jinja rewrites a render's traceback so
    template frames carry the template's own line numbers (the innermost one wins)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _run(field: str, template: Template, client: _Client) -> str:
    try:
        return run(template, {"client": client})
    except RenderSkip as skip:
        raise skip.at(field, _template_line(skip)) from None
    except _SourceFailure as exc:
        failure = exc.error  # re-raised below, outside the handler, unchained
    except Exception as exc:
        raise _failure(exc, field, _template_line(exc)) from exc
    raise failure


def _failure(exc: Exception, field: str, line: int | None) -> TemplateError:
    """A template error in words a marketer reads, with its place."""
    if isinstance(exc, LimitExceeded | RecursionError | MemoryError):
        reason, message = "template-limit", str(exc)
    elif isinstance(exc, SecurityError):
        reason, message = "security", str(exc)
    elif isinstance(exc, UndefinedError):
        reason, message = "template-error", _undefined_message(str(exc))
    else:  # TypeError, ZeroDivisionError, ...: this recipient only
        reason, message = "template-error", f"{type(exc).__name__}: {exc}"
    return TemplateError(reason, _short(message), field=field, line=line)


def _undefined_message(text: str) -> str:
    # Missing data renders empty; what fails is using it as a number or calling it.
    text = text.replace(f"'{__name__}._Client object'", "client")
    text = text.replace("'dict object' has no attribute", "the customer has no attribute")
    return f"{text} (missing data prints as nothing, but cannot be calculated with)"


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


def preview(
    template: MessageTemplate,
    client: Mapping[str, object],
    *,
    last: Container[str] | None = None,
    benefits: Mapping[str, str] | None = None,
) -> Rendered:
    """Render with placeholder codes ``PREVIEW-<GROUP>-<4 hex>`` / ``PREVIEW-<GROUP>-LAST``;
    no code is issued or recorded. ``last``: the name keys of the groups a real customer
    holds a last code from (None: the sample customer, who holds every one), so the
    preview is the message that would be sent, codes aside. Unknown groups get
    placeholders too (validation is what reports them). ``benefits``: each group's
    benefit in words by name key, printed as sent. Raises like :func:`render`."""
    source = _PreviewSource(last, benefits or {})
    rendered = render(template, client, source)
    return replace(rendered, notes=tuple(source.notes), drawn=tuple(source.drawn))

"""The layering of docs/architecture.md, read from the source (nothing is imported or run).

Faces (HTTP routes, the CLI, the web UI, the worker) call services; services hold the
rules and call repositories; repositories hold the SQL; models are the tables. Only the
codes domain changes codes, issuances and group counters. No two packages import each
other in a loop. Modules stay readable in size.

Every rule here names the file and the line that breaks it, so a failure says what to
move where.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "promocodes"

# The faces: what receives a request or a command, or runs on its own schedule, and so
# opens transactions. Besides every api.py / *_api.py, cli.py and web/ module:
FACE_MODULES = {
    "app.py",  # the ASGI app: routes of health, readiness and metrics
    "cli.py",
    "clidoc.py",
    "metrics.py",  # /metrics
    "exports.py",  # streaming CSV exports, audited, page by page
    "worker.py",  # the background face: every domain's scheduled work
    "apikit.py",  # the API's plumbing: auth, problems, limits
    "keycache.py",  # API keys checked lately, per process
    "headers.py",  # security headers on every answer
    "apidocs.py",  # /docs: the API reference from packaged assets
    "apilinks.py",  # the OpenAPI links from what an answer creates to what uses it
    "clikit.py",  # the CLI's plumbing
    "idempotency.py",  # the API's Idempotency-Key: a transaction around a route
    "codes/background.py",  # runs an upload in a thread of the API process
    "demo/builder.py",  # fills a database through the services, as the CLI would
    "demo/__init__.py",
}
# Shared by every layer; they import no domain module.
KIT = {
    "config.py",
    "errors.py",
    "text.py",
    "logs.py",
    "pagination.py",
    "ratelimit.py",
    "csvexport.py",
    "webhooks.py",
    "spool.py",
    "models.py",
    "db.py",
    "groupcommit.py",
    "__init__.py",
}
# Below the domains: the database as a whole (transactions, schema, migrations, copies,
# backups). They may build SQL; they do not move codes between states.
INFRASTRUCTURE = {"db.py", "groupcommit.py", "migrate.py", "dbcopy.py", "backup.py", "schema.py"}
# Modules that compile a segment's filter tree into one SQL expression (a repository's
# job: they build SQL and read issuances, never write).
SQL_COMPILERS = {"segments/filters.py", "segments/predicates.py"}
# Pure: no database, no I/O; any layer may use them (parsing, rendering, rules).
PURE = {
    "codes/code_text.py",  # what a code is
    "codes/benefit.py",  # what a group's codes are worth
    "codes/importer.py",  # parsing uploads
    "codes/json_codes.py",  # parsing codes sent as JSON
    "codes/columns.py",  # which columns of an uploaded table are read
    "codes/report.py",  # the shape of an upload's report
    "codes/sniff.py",  # what an uploaded file is: text or not, its separator, its header
    "codes/redemption_file.py",  # parsing redemption files
    "codes/stock.py",  # a group's stock state
    "codes/pattern.py",  # patterns of generated codes and their draw
    "analytics/chart.py",  # redemptions by day as an SVG chart
    "segments/tree.py",  # filter trees
    "segments/limits.py",  # how large a filter tree may be
    "messaging/rendering.py",  # rendering a template
    "messaging/validation.py",  # validating a template
    "messaging/sandbox.py",  # the Jinja sandbox
    "messaging/guards.py",  # the checks rewritten into a template
    "messaging/template_filters.py",  # the filters a template may use
    "messaging/budget.py",  # a render's budget
    "users/roles.py",  # who may do what in the web UI
    "apikeys/scopes.py",  # what an API key may do
}

# What each layer may import besides the kit. Models include the domains' schemas
# (Pydantic shapes) and the pure modules.
MAY_IMPORT = {
    "face": {"face", "service", "model"},
    "service": {"service", "repository", "model"},
    "repository": {"repository", "model"},
    "model": {"model"},
    "kit": {"model"},  # the database's tools read the schema
}

SQL_BUILDERS = {
    "select",
    "insert",
    "update",
    "delete",
    "text",
    "func",
    "union_all",
    "exists",
    "literal",
    "bindparam",
    "tuple_",
    "and_",
    "or_",
    "case",
    "table",
    "column",
}
CODES_TABLES = ("codes", "issuances", "group_counters", "redemptions")
CODES_MODELS = {"Code", "Issuance", "GroupCounter", "Redemption"}
WRITE_SQL = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE|COPY)\s+(?:TABLE\s+)?"
    rf"({'|'.join(CODES_TABLES)})\b",
    re.IGNORECASE,
)
# Reading a guarded table by name through the ORM: only as these calls' arguments.
JOIN_CALLS = {"join", "outerjoin", "select_from", "join_from", "aliased", "Index"}

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
WHOLE = "stays whole"  # the comment a longer function must carry, saying why


@dataclass
class Module:
    path: str  # relative to promocodes/, with slashes
    tree: ast.Module
    lines: list[str]
    imports: list[tuple[str, int]] = field(default_factory=list)  # (promocodes module, line)

    @property
    def package(self) -> str:
        return self.path.split("/")[0].removesuffix(".py")

    @property
    def layer(self) -> str:
        return layer_of(self.path)


def layer_of(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if (
        path in FACE_MODULES
        or path.startswith("web/")
        or name in ("api.py", "cli.py")
        or name.endswith(("_api.py", "_cli.py"))
    ):
        return "face"
    if path in KIT or path in INFRASTRUCTURE:
        return "kit"
    if name == "repository.py" or name.endswith("_repository.py") or path in SQL_COMPILERS:
        return "repository"
    if name in ("models.py", "schemas.py") or path in PURE or path == "schema.py":
        return "model"
    return "service"


def _module_path(dotted: str) -> str | None:
    """promocodes.codes.service -> codes/service.py (or a package's __init__.py)."""
    parts = dotted.split(".")[1:]
    if not parts:
        return None
    file = SRC.joinpath(*parts).with_suffix(".py")
    if file.exists():
        return "/".join(parts) + ".py"
    if SRC.joinpath(*parts, "__init__.py").exists():
        return "/".join(parts) + "/__init__.py"
    return None


@cache
def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for file in sorted(SRC.rglob("*.py")):
        rel = file.relative_to(SRC).as_posix()
        if rel.startswith("migrations/"):
            continue
        text = file.read_text(encoding="utf-8")
        module = Module(rel, ast.parse(text), text.splitlines())
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("promocodes"):
                    # "from promocodes.codes import service" imports codes/service.py.
                    targets = [f"{node.module}.{a.name}" for a in node.names]
                    targets = [t if _module_path(t) else node.module for t in targets]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("promocodes")]
            for target in targets:
                path = _module_path(target)
                if path is not None and path != rel and (path, node.lineno) not in module.imports:
                    module.imports.append((path, node.lineno))
        found[rel] = module
    return found


def _violations_of_layering() -> Iterator[str]:
    for module in modules().values():
        layer = module.layer
        for target, line in module.imports:
            other = layer_of(target)
            if other == "kit" or target.endswith("/__init__.py"):
                continue
            if other not in MAY_IMPORT[layer]:
                yield f"{module.path}:{line}: a {layer} imports {target} (a {other})"


def test_layers_face_service_repository_model() -> None:
    found = list(_violations_of_layering())
    assert not found, "\n".join(found)


def _imported_names(module: Module, source: str) -> Iterator[tuple[str, int]]:
    for node in ast.walk(module.tree):
        if isinstance(node, ast.ImportFrom) and node.module == source:
            for alias in node.names:
                yield alias.name, node.lineno


def test_sql_is_built_in_repositories_only() -> None:
    """Outside repositories (and the database's own tools) no SQL statement is built
    and no session runs one: services ask repositories. (Models may write the SQL of
    their schema: a partial index's WHERE.)"""
    found = []
    for module in modules().values():
        if module.layer in ("repository", "model") or module.path in INFRASTRUCTURE:
            continue
        for name, line in _imported_names(module, "sqlalchemy"):
            if name in SQL_BUILDERS:
                found.append(f"{module.path}:{line}: builds SQL with sqlalchemy.{name}")
        for name, line in _imported_names(module, "promocodes.db"):
            if name == "RawSQL":
                found.append(f"{module.path}:{line}: builds SQL with RawSQL")
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "scalar", "scalars", "exec_driver_sql")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("session", "s", "conn", "connection")
            ):
                found.append(f"{module.path}:{node.lineno}: runs SQL ({node.func.attr})")
    assert not found, "\n".join(found)


def _strings(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """Every string constant, f-strings' literal parts joined (a statement may be split
    over several implicitly concatenated pieces)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value, node.lineno
        elif isinstance(node, ast.JoinedStr):
            parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
            yield " ".join(str(p) for p in parts), node.lineno


def _guarded_uses(module: Module) -> Iterator[tuple[str, int]]:
    """Uses of the codes domain's ORM classes other than reading a column (``Code.code``)
    or naming the table in a join: creating a row, updating or deleting by class,
    loading whole entities (which could then be changed)."""
    names = {name for name, _ in _imported_names(module, "promocodes.codes.models")}
    guarded = names & CODES_MODELS
    if not guarded:
        return
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(module.tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    for node in ast.walk(module.tree):
        if not (isinstance(node, ast.Name) and node.id in guarded):
            continue
        parent = parents.get(node)
        if isinstance(parent, ast.ImportFrom):
            continue
        if isinstance(parent, ast.Attribute):
            grand = parents.get(parent)
            is_table = parent.attr == "__table__"
            if not is_table or (isinstance(grand, ast.Attribute) and grand.attr == "c"):
                continue  # a column, or the table's columns (an index declaration)
        if (
            isinstance(parent, ast.Call)
            and node in parent.args
            and isinstance(parent.func, ast.Attribute | ast.Name)
            and (getattr(parent.func, "attr", None) or getattr(parent.func, "id", None))
            in JOIN_CALLS
        ):
            continue
        yield node.id, node.lineno


def test_only_codes_writes_codes_issuances_and_counters() -> None:
    found = []
    for module in modules().values():
        if module.package == "codes" or module.path in INFRASTRUCTURE:
            continue
        for text, line in _strings(module.tree):
            if match := WRITE_SQL.search(text):
                found.append(f"{module.path}:{line}: SQL writes {match[1]}")
        for name, line in _guarded_uses(module):
            found.append(f"{module.path}:{line}: uses the {name} rows, not a column of them")
    assert not found, "\n".join(found)


def _package_cycles() -> list[list[str]]:
    """Cycles in the graph of packages (codes, messaging, …; a top-level module is its
    own package) drawn by the modules below the faces: a face imports many domains and
    nothing imports it, so it closes no loop of dependencies."""
    edges: dict[str, set[str]] = {}
    for module in modules().values():
        if module.layer == "face":
            continue
        for target, _ in module.imports:
            other = modules()[target]
            if other.layer != "face" and other.package != module.package:
                edges.setdefault(module.package, set()).add(other.package)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for package in sorted(edges):
        if package not in state:
            visit(package, [package])
    return cycles


def test_no_package_import_cycle() -> None:
    cycles = _package_cycles()
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


# Receivers of .read()/.write()/.commit() that are no database: files, buffers, savepoints.
NOT_A_DATABASE = {"self", "out", "file", "stream", "buffer", "path", "savepoint"}


def _receiver(func: ast.Attribute) -> str | None:
    return func.value.id if isinstance(func.value, ast.Name) else None


def test_transactions_open_in_faces_and_db_only() -> None:
    """Services only flush: ``Database.write()/read()/driver_write()/pages()`` and
    ``commit()`` belong to the faces (and to db.py, which implements them, and the
    database's tools, which copy and back up whole databases for the CLI)."""
    found = []
    for module in modules().values():
        if module.layer == "face" or module.path in INFRASTRUCTURE:
            continue
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and (
                    (node.func.attr in ("write", "read", "driver_write") and not node.args)
                    or node.func.attr in ("pages", "commit")
                )
                and _receiver(node.func) not in NOT_A_DATABASE
            ):
                found.append(f"{module.path}:{node.lineno}: opens a transaction ({node.func.attr})")
    assert not found, "\n".join(found)


def test_the_session_comes_first() -> None:
    """One contract for every service and repository: the caller's session (or driver
    transaction) is the first argument."""
    found = []
    for module in modules().values():
        if module.layer not in ("service", "repository"):
            continue
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            if args and args[0].arg in ("self", "cls"):
                args = args[1:]
            for position, arg in enumerate(args):
                annotation = ast.unparse(arg.annotation) if arg.annotation else ""
                if re.search(r"\b(Session|Driver)\b", annotation) and position != 0:
                    found.append(f"{module.path}:{node.lineno}: {node.name} takes {arg.arg} late")
    assert not found, "\n".join(found)


def _long_functions(module: Module) -> Iterator[str]:
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        length = node.end_lineno - node.lineno + 1 if node.end_lineno else 0
        if length <= MAX_FUNCTION_LINES:
            continue
        around = module.lines[max(0, first - 4) : node.lineno + 3]
        if not any(WHOLE in line for line in around):
            yield f"{module.path}:{node.lineno}: {node.name} has {length} lines"


def test_modules_and_functions_stay_readable() -> None:
    """No module over 400 lines; no function over 60 without a comment that says why it
    stays whole (``# … stays whole: …`` next to its definition)."""
    found = [
        f"{m.path}: {len(m.lines)} lines"
        for m in modules().values()
        if len(m.lines) > MAX_MODULE_LINES
    ]
    for module in modules().values():
        found += _long_functions(module)
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("path", "layer"),
    [
        ("codes/api.py", "face"),
        ("web/groups.py", "face"),
        ("worker.py", "face"),
        ("codes/service.py", "service"),
        ("codes/issuance.py", "service"),
        ("messaging/service.py", "service"),
        ("codes/claim_repository.py", "repository"),
        ("messaging/repository.py", "repository"),
        ("codes/models.py", "model"),
        ("messaging/rendering.py", "model"),
        ("db.py", "kit"),
        ("models.py", "kit"),
    ],
)
def test_the_layers_are_read_as_documented(path: str, layer: str) -> None:
    assert (SRC / path).exists(), path
    assert layer_of(path) == layer

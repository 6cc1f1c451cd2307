"""Cheaper request dispatch than FastAPI's defaults, for the same answers.

- ``Branch``: a router holding a part of the app (the API, the web UI). FastAPI asks each
  included router in turn, and each router asks each of its routes with a few dictionary
  writes around every regular expression: with ~130 routes, finding a route, and above
  all finding none (a 404 also retries the path with a slash added or removed), cost
  more than the rest of a small request. A branch first tries one expression made of all
  its routes' paths and, when it does not match, answers "not here" at once; when it
  does, FastAPI's own matching runs as before (methods, 405s and precedence unchanged).
- ``OneHopRoute``: an API route whose ``def`` endpoint is run in the thread pool once.
  FastAPI hands a plain ``def`` endpoint to the thread pool, then hands its answer to
  the thread pool again to check it against the response model: two thread hand-offs,
  each costing more than the check. Here the endpoint is wrapped in a coroutine that
  runs it in the thread pool, so FastAPI checks the answer on the event loop.
- ``Unrouted``: the app's router answers a path no route has (nor its twin with the
  trailing slash added or removed) with its 404 at once, found with one expression of
  every route's path; FastAPI asks every route twice, then its low-priority routes.
- ``TopRoute``: the app's own routes (health, metrics, ``/docs``) pass over a path their
  expression does not match without FastAPI's route-context lookups.
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

# A named group of a route's path expression (``(?P<group_id>…)``): the same name is in
# many routes, and one expression may name a group once, so they become plain groups.
_NAMED = re.compile(r"\(\?P<[^>]+>")


def leaves(routes: list[BaseRoute]) -> list[BaseRoute] | None:
    """The routes themselves, the routers included among ``routes`` opened (None when a
    router is included under a prefix of its own: its routes' paths are not theirs)."""
    found: list[BaseRoute] = []
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router
        if inner is None:
            found.append(route)
            continue
        if getattr(getattr(route, "include_context", None), "prefix", ""):
            return None
        below = leaves(inner.routes)
        if below is None:
            return None
        found += below
    return found


def _paths_of(routes: list[BaseRoute]) -> list[str]:
    """The path expressions of ``routes`` and of the routers included among them (none
    when one of them has none: then nothing may be filtered)."""
    found = leaves(routes) or []
    regexes = [getattr(route, "path_regex", None) for route in found]
    if None in regexes:
        return []
    return [_NAMED.sub("(?:", regex.pattern) for regex in regexes if regex is not None]


class Branch(APIRouter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._filter: re.Pattern[str] | None = None
        self._filter_of = -1
        self._lock = threading.Lock()
        self._nested = False
        self._nested_of = -1

    def take(self, router: APIRouter) -> None:
        """``router``'s routes as this branch's own. FastAPI keeps an included router
        nested (an ``_IncludedRouter``), and every request walks each nested router's
        routes again to see whether they changed; a router's routes already carry its
        prefix, tags, responses and dependencies, so taking them flat answers the same."""
        self.routes.extend(router.routes)
        changed = getattr(self, "_mark_routes_changed", None)  # FastAPI's caches go by it
        if changed is not None:
            changed()

    def _get_routes_version(self, seen: set[int] | None = None) -> int:
        # FastAPI asks each included router for its version on every request (twice for
        # a path no route has), and a router walks all its routes to add the versions of
        # the routers included within it: ~130 checks a request. A branch's routes are
        # flat (``take``), so unless a router was included in it, its version is its own.
        size = len(self.routes)
        if self._nested_of != size:
            self._nested = any(hasattr(route, "original_router") for route in self.routes)
            self._nested_of = size
        if self._nested:
            return super()._get_routes_version(seen)
        return self._routes_version

    def _path_filter(self) -> re.Pattern[str] | None:
        # Built on first use, after every route is added (and again if routes change).
        size = len(self.routes)
        if self._filter_of != size:
            with self._lock:
                paths = _paths_of(self.routes)
                self._filter = re.compile("|".join(paths)) if paths else None
                self._filter_of = size
        return self._filter

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        paths = self._path_filter()
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        route_path = path[len(root) :] if root and path.startswith(root) else path
        if paths is not None and not paths.match(route_path):
            return Match.NONE, {}
        return super().matches(scope)


def _in_one_hop(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)  # FastAPI reads the signature through ``__wrapped__``
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return run


class OneHopRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if inspect.isfunction(endpoint) and not inspect.iscoroutinefunction(endpoint):
            endpoint = _in_one_hop(endpoint)
        super().__init__(path, endpoint, **kwargs)


class TopRoute(APIRoute):
    """A route of the app's own (health, metrics, the API reference), not of a branch:
    FastAPI asks each of them about every request no branch took, twice for a path no
    route has (the retry with a slash), and each ask first looks for the route context
    of an included router, which these never have. A path the route's expression does
    not match is passed over at once, as ``Route.matches`` would find it."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not scope.get("root_path") and self.path_regex.match(scope["path"]) is None:
            return Match.NONE, {}
        return super().matches(scope)


def shortcut_unrouted(router: APIRouter) -> None:
    """``router`` (the app's) answers a path no route has in one step (``Unrouted``),
    unless middleware of its own runs before its routes are asked (or its FastAPI keeps
    no version of its routes to rebuild the expression by)."""
    if router.middleware_stack == router.app and hasattr(router, "_get_routes_version"):
        router.middleware_stack = Unrouted(router)


class Unrouted:
    """The app's router with a shortcut for a path no route has: when neither the path nor
    its twin with the trailing slash added or removed (the router's retry) can match any
    route's expression, the router's ``default`` (the 404) answers at once. FastAPI would
    ask every route twice, then its low-priority routes, to come to the same answer."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.app = router.middleware_stack
        self._filter: re.Pattern[str] | None = None
        self._filter_of = -1
        self._lock = threading.Lock()

    def _paths(self) -> re.Pattern[str] | None:
        version = self.router._get_routes_version()
        if self._filter_of != version:
            with self._lock:
                found = leaves(self.router.routes)
                shortcut = (
                    found is not None
                    and not getattr(self.router, "form_limits", None)
                    and not _low_priority(self.router)
                )
                paths = _paths_of(self.router.routes) if shortcut else []
                self._filter = re.compile("|".join(paths)) if paths else None
                self._filter_of = version
        return self._filter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            paths = self._paths()
            path = scope["path"]
            if paths is not None and not paths.match(path):
                twin = path.rstrip("/") if path.endswith("/") else path + "/"
                if path == "/" or not paths.match(twin):
                    scope.setdefault("router", self.router)
                    await self.router.default(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _low_priority(router: APIRouter) -> bool:
    """Whether ``router`` or a router included in it has low-priority routes (FastAPI's
    frontend routes): they are asked last, by rules of their own."""
    if getattr(router, "_low_priority_routes", None):
        return True
    included = (getattr(route, "original_router", None) for route in router.routes)
    return any(_low_priority(inner) for inner in included if inner is not None)

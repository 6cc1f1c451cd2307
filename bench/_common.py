"""Shared plumbing of the benchmarks in ``bench/`` (see ``docs/performance.md``).

Every benchmark accepts ``--n N`` and ``--db sqlite|postgresql``, measures the project's
path next to a raw floor in the same run, each in its own spawned process (so each peak
RSS is its own), and prints its result last as one JSON line. This module holds the
pieces they share: argument parsing, a private throw-away database on either backend,
running a function in a fresh child process, peak RSS, reproducible unique codes and the
result line.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from argparse import ArgumentParser
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, ParamSpec, TypeVar

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

P = ParamSpec("P")
R = TypeVar("R")

Backend = Literal["sqlite", "postgresql"]
POSTGRES_URL_ENV = "PROMOCODES_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_N = 200_000


# --- arguments --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BenchArgs:
    n: int
    db: Backend


def parse_args(description: str, default_n: int = DEFAULT_N) -> BenchArgs:
    parser = ArgumentParser(description=description)
    parser.add_argument(
        "--n", type=int, default=default_n, help=f"work size (default {default_n:_})"
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ns = parser.parse_args()
    if ns.n < 10:
        parser.error("--n must be at least 10")
    backend: Backend = "postgresql" if ns.db == "postgresql" else "sqlite"
    return BenchArgs(n=ns.n, db=backend)


# --- databases --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """A private database for one run. ``url`` is for SQLAlchemy (the project's
    ``Database``); ``floor_target`` is what the raw driver of the floor connects to:
    a file path for ``sqlite3`` (a separate file next to the project's, so neither
    measurement pays for the other's pages), a libpq URL for psycopg (the same private
    database: same server, same settings)."""

    backend: Backend
    url: str
    floor_target: str
    workdir: Path


def postgres_server_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


def libpq_url(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg://…`` → ``postgresql://…`` for ``psycopg.connect``."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(False)


@contextmanager
def bench_database(backend: Backend) -> Iterator[BenchDatabase]:
    """A fresh, empty database plus a scratch directory, both removed afterwards.

    PostgreSQL: creates ``promocodes_bench_<pid>`` on the server of
    ``$PROMOCODES_BENCH_POSTGRES_URL`` and drops exactly that database at the end; no
    other database is touched. SQLite: files in a temporary directory.
    """
    with tempfile.TemporaryDirectory(prefix="promocodes_bench_") as tmp:
        workdir = Path(tmp)
        if backend == "sqlite":
            yield BenchDatabase(
                backend,
                f"sqlite:///{workdir / 'project.db'}",
                str(workdir / "floor.db"),
                workdir,
            )
            return
        server = make_url(postgres_server_url())
        name = f"promocodes_bench_{os.getpid()}"
        ident = sql.Identifier(name)
        with psycopg.connect(libpq_url(str(server)), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        try:
            url = server.set(database=name).render_as_string(hide_password=False)
            yield BenchDatabase(backend, url, libpq_url(url), workdir)
        finally:
            with psycopg.connect(libpq_url(str(server)), autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def checkpoint(bdb: BenchDatabase) -> None:
    """Flush dirty pages before a timed phase so it does not pay for the previous one's
    checkpoint (PostgreSQL only; SQLite phases use separate files). Best effort: needs
    superuser or pg_checkpoint."""
    if bdb.backend != "postgresql":
        return
    try:
        with psycopg.connect(bdb.floor_target, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error as exc:
        say(f"  (no CHECKPOINT before the phase: {exc})")


def server_version(bdb: BenchDatabase) -> str:
    if bdb.backend == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with psycopg.connect(bdb.floor_target) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


# --- processes and measurements ---------------------------------------------------------


def run_in_child(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn`` in a fresh interpreter (``spawn``) and return its result.

    A spawned child shares no memory with this process, so ``peak_rss_mb()`` called at
    its end is the peak of that work alone. ``fn`` and its result must be picklable
    (module-level functions, plain data); exceptions propagate.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def median_ms(fn: Callable[[], object], repetitions: int = 20, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repetitions):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


# --- test data --------------------------------------------------------------------------

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TRIPLES = [a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET]
_MASK62 = (1 << 62) - 1  # 2**62 < 36**12, so every value fits in 12 base-36 digits


def scramble(x: int, seed: int = 0x5DEECE66D) -> int:
    """A bijection of [0, 2**62) (xor-shifts and odd multipliers are invertible there):
    distinct counters give distinct values, in an order that looks random."""
    x = (x ^ seed) & _MASK62
    x ^= x >> 31
    x = (x * 0x7FB5D329728EA185) & _MASK62
    x ^= x >> 27
    x = (x * 0x81DADEF4BC2DD44D) & _MASK62
    x ^= x >> 33
    return x


def code_for(counter: int) -> str:
    """The 12-character code (A-Z, 0-9) numbered ``counter``; unique per counter."""
    v = scramble(counter)
    v, d = divmod(v, 46_656)
    v, c = divmod(v, 46_656)
    a, b = divmod(v, 46_656)
    return _TRIPLES[a] + _TRIPLES[b] + _TRIPLES[c] + _TRIPLES[d]


def write_codes(path: Path, counters: Iterable[range], chunk: int = 100_000) -> int:
    """Stream the codes of the given counter ranges into ``path``, one per line (never
    all in memory). Returns how many lines were written."""
    written = 0
    with path.open("w", encoding="ascii", newline="\n") as out:
        for counter_range in counters:
            for start in range(counter_range.start, counter_range.stop, chunk):
                stop = min(start + chunk, counter_range.stop)
                out.write("\n".join(code_for(i) for i in range(start, stop)))
                out.write("\n")
                written += stop - start
    return written


# --- output -----------------------------------------------------------------------------


def say(message: str) -> None:
    """A human-readable progress line (the JSON result line always comes last)."""
    print(message, flush=True)


def per_second(items: int, seconds: float) -> float:
    return items / seconds if seconds > 0 else float("inf")


def emit(
    bench: str,
    backend: Backend,
    n: int,
    *,
    project_per_s: float,
    floor_per_s: float,
    peak_rss_mb: float,
    **extra: object,
) -> None:
    """Print the result line: ``ratio = floor_per_s / project_per_s`` (≥ 1 means the
    project is slower than the floor)."""
    result: dict[str, object] = {
        "bench": bench,
        "db": backend,
        "n": n,
        "project_per_s": round(project_per_s),
        "floor_per_s": round(floor_per_s),
        "ratio": round(floor_per_s / project_per_s, 3),
        "peak_rss_mb": round(peak_rss_mb, 1),
    }
    for key, value in extra.items():
        result[key] = round(value, 3) if isinstance(value, float) else value
    # Other work on the machine skews every figure: keep the evidence with the result.
    result["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result), flush=True)

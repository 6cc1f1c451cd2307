"""The budget of one message's render: time, work, size and memory, and the checks that
draw from it. Jinja cannot interrupt a running template, so every place a template can
spin or grow a value checks the budget itself (``sandbox.py`` puts the checks there):
loop iterations, calls, filters, operators, literals and output.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from itertools import islice
from typing import TypeVar

MAX_OUTPUT_CHARS = 1_000_000
RENDER_SECONDS = 2.0
MAX_RANGE = 10_000
# Big-integer arithmetic is super-linear; 10,000 bits (~3,000 digits) is far beyond
# any real use and keeps every multiplication and power instant.
MAX_INT_BITS = 10_000
# Work units per message: one per call/iteration/filter plus one per character
# produced. Bounds what a template can build in buffers that never reach the output
# (macros, {% set %} blocks) and the number of references such buffers can hold.
WORK_BUDGET = 10 * MAX_OUTPUT_CHARS
# Bytes a message's render may allocate, all values it builds together (strings, lists,
# dicts: what an operator, a filter, a method or a literal returns), whether or not they
# are still alive: a conservative bound on its memory, whatever the template keeps.
MEMORY_BUDGET = 10 * 1024 * 1024
# Elements of a new sequence measured one by one (beyond: the average of those counted).
_MEASURED_ITEMS = 1_000

_T = TypeVar("_T")


class LimitExceeded(Exception):
    """A render went over a time, size or work limit."""


class Budget:
    """Time, work and output allowance of one message (all its fields together).

    The hot paths do ``work += cost`` and compare with ``next_check`` only (inlined where
    it matters); :meth:`check` then enforces the work limit and reads the clock.
    """

    __slots__ = ("deadline", "memory", "next_check", "output", "work")

    # Reading the clock on every unit of work cost a fifth of a typical render; every
    # CLOCK_EVERY units still bounds the overrun to well under a millisecond.
    CLOCK_EVERY = 64

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.work = 0
        self.output = 0
        self.memory = 0
        self.next_check = 0

    def tick(self, cost: int = 1) -> None:
        self.work += cost
        if self.work >= self.next_check:
            self.check()

    def check(self) -> None:
        if self.work > WORK_BUDGET:
            raise LimitExceeded("the template does too much work (loops, calls or output)")
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"rendering took longer than {RENDER_SECONDS:g} s")
        # One threshold for both limits: the next clock reading, or just past the budget.
        self.next_check = min(self.work + self.CLOCK_EVERY, WORK_BUDGET + 1)

    def allocate(self, value: object) -> None:
        """Charge a value the template just built (its bytes, and its items' when it is
        a new sequence of strings, as split() makes): past ``MEMORY_BUDGET``, the render
        stops."""
        self.memory += allocated(value)
        if self.memory > MEMORY_BUDGET:
            raise LimitExceeded(
                f"the template builds more than {MEMORY_BUDGET // (1024 * 1024)} MB of text "
                "and lists"
            )


def allocated(value: object) -> int:
    """What building ``value`` took: a string's or number's own bytes; a container's
    slots plus its string items' bytes (items that are containers were charged when
    they were built). Sampled beyond ``_MEASURED_ITEMS`` items: O(1000) at most."""
    size = sys.getsizeof(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = list(islice(value, _MEASURED_ITEMS))
        strings = sum(sys.getsizeof(item) for item in items if isinstance(item, str))
        size += strings * len(value) // max(len(items), 1)
    elif isinstance(value, Mapping):
        size += sum(sys.getsizeof(v) for v in islice(value.values(), _MEASURED_ITEMS))
    return size


_BUDGET: ContextVar[Budget | None] = ContextVar("promocodes_render_budget", default=None)


class budgeted:
    """``with budgeted(seconds) as current:`` — the budget of one message.

    A context variable, not an attribute of the shared environments: renders run
    concurrently in threads and each needs its own clock. (A class rather than a
    ``@contextmanager`` generator: entering one per message showed in profiles.)
    """

    __slots__ = ("_budget", "_token")

    def __init__(self, seconds: float = RENDER_SECONDS) -> None:
        self._budget = Budget(seconds)

    def __enter__(self) -> Budget:
        self._token = _BUDGET.set(self._budget)
        return self._budget

    def __exit__(self, *exc: object) -> None:
        _BUDGET.reset(self._token)


def budget() -> Budget:
    current = _BUDGET.get()
    if current is None:
        # Jinja folds constant expressions at compile time and swallows errors doing
        # so; refusing here keeps every guarded operation at render time, budgeted.
        raise RuntimeError("sandboxed code runs only inside a budgeted render")
    return current


def approx_len(value: object) -> int:
    """An over-estimate of len(str(value)), stopping as soon as it passes the cap.

    str() of a container would build the whole text first (a list of 10,000 references
    to one 1 MB string is cheap to hold and 10 GB to print), so it is measured instead.
    """
    total, stack = 0, [value]
    while stack and total <= MAX_OUTPUT_CHARS:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, Mapping):
            total += 2
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2
            stack.extend(item)
        else:
            total += 32
    return total


def check_size(value: object) -> int:
    size = len(value) if isinstance(value, str) else approx_len(value)
    if size > MAX_OUTPUT_CHARS:
        raise LimitExceeded(f"a value would be larger than {MAX_OUTPUT_CHARS:,} characters")
    return size


def ticking(items: Iterable[_T], cost: int = 1) -> Iterator[_T]:
    current = budget()
    for item in items:
        current.work += cost  # Budget.tick, inlined: this runs once per loop iteration
        if current.work >= current.next_check:
            current.check()
        yield item


class BoundedRange:
    """range() for templates: at most MAX_RANGE items, and iterating it costs budget."""

    __slots__ = ("_range",)

    def __init__(self, rng: range) -> None:
        self._range = rng

    def __iter__(self) -> Iterator[int]:
        return ticking(self._range)

    def __reversed__(self) -> Iterator[int]:
        return ticking(reversed(self._range))

    def __len__(self) -> int:
        return len(self._range)

    def __contains__(self, item: object) -> bool:
        return item in self._range

    def __getitem__(self, index: int | slice) -> int | BoundedRange:
        found = self._range[index]
        return BoundedRange(found) if isinstance(found, range) else found

    def __repr__(self) -> str:
        return repr(self._range)


def bounded_range(*args: int) -> BoundedRange:
    rng = range(*args)
    try:
        too_long = len(rng) > MAX_RANGE
    except OverflowError:
        too_long = True
    if too_long:
        raise LimitExceeded(f"range() is limited to {MAX_RANGE:,} items")
    return BoundedRange(rng)

"""Temporary files of uploads: a body spooled to disk within its limit, and removed on
every path — the upload done or failed, the client gone mid-body, the limit passed.
Every face that takes a file spools it here, so one place owns these files.

A background upload opens its file before the request that brought it ends (see
``codes/background.py``); the name is removed with the request, and the disk space is
freed when the upload closes the file, whether it finishes or fails.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import BinaryIO

from promocodes.config import Settings
from promocodes.errors import PayloadTooLarge

PREFIX = "promocodes-upload-"
CHUNK = 1 << 20


def folder(settings: Settings) -> Path:
    """Where uploads are spooled: ``upload_temp_dir`` (made when missing), or the system's
    temp folder."""
    if settings.upload_temp_dir:
        path = Path(settings.upload_temp_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.gettempdir())


def remove(path: Path) -> None:
    """Remove a spooled file; a file already gone is no error (several owners may try)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


@contextmanager
def _named(where: Path) -> Iterator[tuple[Path, BinaryIO]]:
    """A new file in ``where``, open for writing, removed when the block ends (however)."""
    fd, name = tempfile.mkstemp(prefix=PREFIX, dir=where)
    path = Path(name)
    try:
        with open(fd, "wb") as handle:
            yield path, handle
    finally:
        remove(path)


@asynccontextmanager
async def body(chunks: AsyncIterable[bytes], where: Path, limit: int) -> AsyncIterator[Path]:
    """``chunks`` (a request body) written to a file in ``where``, for the block's use.
    More than ``limit`` bytes is a ``PayloadTooLarge``; an error while the body arrives
    (the client gone) propagates. The file is removed when the block ends, however."""
    with _named(where) as (path, out):
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            out.write(chunk)
        out.close()
        yield path


@contextmanager
def copied(source: BinaryIO, where: Path, limit: int) -> Iterator[Path]:
    """A copy of ``source`` (a form's file part) in ``where`` that the caller may hand to
    work outliving the form; removed when the block ends, however."""
    with _named(where) as (path, out):
        source.seek(0)
        shutil.copyfileobj(source, out, CHUNK)
        if out.tell() > limit:
            raise PayloadTooLarge(limit)
        out.close()
        yield path

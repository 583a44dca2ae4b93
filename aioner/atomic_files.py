"""Files that appear complete or not at all.

Long runs here are stopped at any moment (a session's end, a killed job). A file written in place and
stopped halfway is worse than none: the next run reads half a JSON, or a tagged corpus that silently
lacks its last documents. Every output that a later run reads back is therefore written to
``<name>.tmp`` beside it, flushed to disk, and renamed over ``<name>`` (``os.replace`` is atomic on
one file system): a reader sees the old file, or none, or the new one whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: str | os.PathLike) -> Path:
    """Where ``path`` is written before it is moved into place (a leftover one marks a stopped write)."""
    path = Path(path)
    return path.with_name(path.name + ".tmp")


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary path to write ``path``'s new content to; on a clean exit it is synced and
    moved over ``path``, on an error it is removed and ``path`` is left as it was."""
    tmp = temporary_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """``path.write_text(text)`` (UTF-8), atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")

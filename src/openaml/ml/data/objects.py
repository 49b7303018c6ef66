"""Input objects of a datasource, as resolved by storage/ (data.md §2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO


@dataclass(frozen=True)
class DataObject:
    """One input object: `open()` returns a fresh readable binary stream of its stored bytes;
    `open_at(start, end)`, where the store can, one of bytes [start, end) (end None: to the
    object's end; a stream may give more than asked, which its reader then leaves)."""

    uri: str                     # s3://bucket/key
    key: str                     # key without the bucket (the random split hashes it)
    size: int                    # bytes as stored
    open: Callable[[], BinaryIO]
    open_at: Callable[[int, int | None], BinaryIO] | None = None

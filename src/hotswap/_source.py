"""Source versions: the exact text hotswap reads, hashes and compiles.

The import system trusts ``__pycache__`` when a file's size and whole-second
mtime did not change, so an edit saved that way would load old code. hotswap
never asks it: every version is compiled from the bytes it just read and
hashed, so the code that runs is always the text that was recorded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import linecache
import os
import time
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

# A file whose timestamps are this close to the moment we read it may be
# rewritten within the same timestamp tick (coarse kernel clocks, 1 s or 2 s
# file systems) without any stat field changing: such a "racy" file is
# re-hashed at every check until it is old enough to trust its stat.
RACY_WINDOW_NS = 2_000_000_000

StatSignature = tuple[int, int, int, int]  # (mtime ns, ctime ns, size, inode)


def stat_signature(st: os.stat_result) -> StatSignature:
    """What changes when a file is written, renamed over, or touched."""
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


@dataclass(frozen=True)
class SourceVersion:
    """One version of a module's file, as read at one moment."""

    path: str
    data: bytes
    digest: str
    signature: StatSignature
    read_at_ns: int
    # what later steps derive from this exact text, kept with it and dropped with it
    memo: dict[object, Any] = field(default_factory=dict, repr=False, compare=False)

    @functools.cached_property
    def text(self) -> str:
        """The decoded text (PEP 263 cookies honoured), decoded once."""
        return importlib.util.decode_source(self.data)

    def changed_at_ns(self) -> int:
        """When the file was last written or renamed (the later of its mtime and ctime)."""
        mtime_ns, ctime_ns, _size, _inode = self.signature
        return max(mtime_ns, ctime_ns)

    def is_racy(self) -> bool:
        """Could the file change again without its stat signature changing?"""
        mtime_ns, ctime_ns, _size, _inode = self.signature  # (changed_at_ns, inline: polls ask it)
        return max(mtime_ns, ctime_ns) >= self.read_at_ns - RACY_WINDOW_NS

    def compile(self) -> CodeType:
        """Compile this exact text, with the module's own ``__future__`` flags only."""
        return compile(self.text, self.path, "exec", dont_inherit=True)


def digest_of(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_version(path: str) -> SourceVersion:
    """Read ``path`` so that the signature recorded is never newer than the bytes.

    The stat is taken before the read; if the file changed while we read it,
    read again, so a recorded (signature, bytes) pair never hides a write.
    Raises ``OSError`` when the file cannot be read.
    """
    for _ in range(5):
        before = os.stat(path)
        with open(path, "rb") as f:
            data = f.read()
        after = os.stat(path)
        if stat_signature(before) == stat_signature(after):
            break
    return SourceVersion(
        path=path,
        data=data,
        digest=digest_of(data),
        signature=stat_signature(before),
        read_at_ns=time.time_ns(),
    )


def pin_in_linecache(version: SourceVersion) -> None:
    """Make tracebacks, ``inspect`` and debuggers show the text that runs, not the file.

    While a broken save sits on disk, the module keeps running its last good
    version: its source lines must come from that version. An entry without
    an mtime is never dropped by ``linecache.checkcache``.
    """
    lines = version.text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    linecache.cache[version.path] = (len(version.data), None, lines, version.path)


def unpin_from_linecache(path: str) -> None:
    entry = linecache.cache.get(path)
    if entry is not None and len(entry) == 4 and entry[1] is None:
        del linecache.cache[path]

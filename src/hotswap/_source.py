"""Source versions: the exact text hotswap reads, hashes and compiles.

The import system trusts ``__pycache__`` when a file's size and whole-second
mtime did not change, so an edit saved that way would load old code. hotswap
never asks it: every version is compiled from the bytes it just read and
hashed, so the code that runs is always the text that was recorded.
"""

from __future__ import annotations

import codecs
import functools
import importlib.util
import linecache
import os
import re
import time
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from ._join import digest_of as digest_of  # (one digest: a worker's ``_join`` names texts alike)

# A file whose timestamps are this close to the moment we read it may be
# rewritten within the same timestamp tick (coarse kernel clocks, 1 s or 2 s
# file systems) without any stat field changing: such a "racy" file is
# re-hashed at every check until it is old enough to trust its stat.
RACY_WINDOW_NS = 2_000_000_000

StatSignature = tuple[int, int, int, int]  # (mtime ns, ctime ns, size, inode)


def stat_signature(st: os.stat_result) -> StatSignature:
    """What changes when a file is written, renamed over, or touched."""
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


@dataclass(frozen=True, init=False)
class SourceVersion:
    """One version of a module's file, as read at one moment."""

    path: str
    data: bytes
    signature: StatSignature
    read_at_ns: int  # when the read began (time.time_ns)
    # what later steps derive from this exact text, kept with it and dropped with it
    memo: dict[object, Any] = field(init=False, repr=False, compare=False)

    def __init__(self, path: str, data: bytes, signature: StatSignature, read_at_ns: int) -> None:
        # (the generated one sets each field through ``object.__setattr__``: four times the cost,
        # at every import of a user module)
        fields = self.__dict__
        fields["path"], fields["data"], fields["signature"], fields["read_at_ns"] = path, data, signature, read_at_ns
        fields["memo"] = {}

    @functools.cached_property
    def digest(self) -> str:
        """What names this text (in the journal, and between the session and its workers): hashed
        when first asked, not at the import that read it (a module of 50 kB: ~50 µs)."""
        return digest_of(self.data)

    @functools.cached_property
    def text(self) -> str:
        """The decoded text (PEP 263 cookies honoured), decoded once.

        Raises ``UndecodableSource`` (a ``SyntaxError``, as Python's import says)
        when the bytes are not text in the file's encoding.
        """
        data = self.data
        if b"\r" not in data and b"coding" not in data[: _second_line_end(data)] and not data.startswith(codecs.BOM_UTF8):
            try:  # plain UTF-8 with ``\n`` lines, most files: what the full decoding would give
                return data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        try:
            return importlib.util.decode_source(data)
        except (SyntaxError, UnicodeDecodeError, LookupError) as error:
            raise undecodable(self.path, data, error) from None

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


class UndecodableSource(SyntaxError, ValueError):
    """A file whose bytes are not text in its encoding: Python's import reports a
    ``SyntaxError``; a ``ValueError`` too, as the ``UnicodeDecodeError`` it stands for."""


def undecodable(path: str, data: bytes, error: Exception) -> UndecodableSource:
    """The error that says where the bytes that cannot be decoded are, and what to do."""
    declared = _declared_encoding(data)
    encoding = declared or "utf-8"
    start = error.start if isinstance(error, UnicodeDecodeError) else _first_bad_byte(data, encoding)
    if start is None:  # the coding line itself is wrong (an unknown encoding, say)
        message = f"the file's encoding cannot be used ({error})"
        line = 1 + data.count(b"\n", 0, max(data.find(b"coding"), 0))
        return UndecodableSource(message, (path, line, None, None))
    line = data.count(b"\n", 0, start) + 1
    line_start = data.rfind(b"\n", 0, start) + 1
    column = start - line_start + 1
    shown = data[line_start : data.find(b"\n", start) if b"\n" in data[start:] else len(data)]
    byte = f"byte 0x{data[start]:02x}" if start < len(data) else "its last bytes"
    if declared is None:
        message = (
            f"the file is not valid UTF-8 ({byte} at line {line}, column {column}) and has no coding line; "
            "save it as UTF-8, or declare its encoding (PEP 263)"
        )
    else:
        message = f"the file is not valid {declared}, the encoding its coding line declares ({byte} at line {line})"
    text = shown.decode("utf-8", "backslashreplace")
    return UndecodableSource(message, (path, line, column, text))


def _declared_encoding(data: bytes) -> str | None:
    """The encoding a coding line declares (PEP 263), if one does (``None``: UTF-8)."""
    for line in data.removeprefix(codecs.BOM_UTF8).splitlines()[:2]:
        match = _CODING.match(line)
        if match:
            return match.group(1).decode("ascii")
        if line.strip() and not line.lstrip().startswith(b"#"):
            break  # a coding line comes before any code
    return None


_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


def _second_line_end(data: bytes) -> int:
    """Where a coding line may end: it is one of the first two lines (PEP 263)."""
    end = data.find(b"\n", data.find(b"\n") + 1)
    return len(data) if end < 0 else end


def _first_bad_byte(data: bytes, encoding: str) -> int | None:
    try:
        data.decode(encoding)
    except UnicodeDecodeError as error:
        return error.start
    except LookupError:
        return None
    return None


def read_version(path: str, *, until_unchanged: bool = True) -> SourceVersion:
    """Read ``path`` so that the signature recorded is never newer than the bytes.

    The signature is taken from the open file before it is read: a write during
    the read leaves it older than the bytes, so the next check reads the file
    again (a newer one would hide that write). ``until_unchanged``: read again
    while the file was written during the read, so that a version is never half
    old, half new; an import need not (like Python's own, it runs what it read:
    the next check sees the write). Raises ``OSError`` when the file cannot be read.
    """
    started_ns = time.time_ns()
    status, data = _read(path, until_unchanged)
    return SourceVersion(path=path, data=data, signature=stat_signature(status), read_at_ns=started_ns)


def read_bytes(path: str) -> bytes:
    """A file's bytes, as they are when read (``OSError`` if it cannot be read): for a file whose
    bytes say themselves whether they can be used (a ``.pyc`` checked by hash), read once."""
    descriptor = os.open(path, _READ_FLAGS)
    try:
        return _read_to_end(descriptor, os.fstat(descriptor).st_size)
    finally:
        os.close(descriptor)


def _read_to_end(descriptor: int, size: int) -> bytes:
    """The bytes of a file whose size was ``size`` (in one ``read`` if it still is)."""
    data = os.read(descriptor, size + 1)
    if len(data) != size:  # it grew or shrank meanwhile (or a short read): to the end
        data += b"".join(iter(functools.partial(os.read, descriptor, 1 << 20), b""))
    return data


def _read(path: str, until_unchanged: bool) -> tuple[os.stat_result, bytes]:
    """A file's stat, taken from the open file before reading it, then its bytes; read again if
    it was written meanwhile (a save in place: the bytes may be half old, half new), unless not
    ``until_unchanged``. (``os`` calls, not ``open``: this runs at every import, and costs a third
    of what ``open`` would.)"""
    for _ in range(5):
        descriptor = os.open(path, _READ_FLAGS)
        try:
            status = os.fstat(descriptor)
            data = _read_to_end(descriptor, status.st_size)
            if not until_unchanged or stat_signature(os.fstat(descriptor)) == stat_signature(status):
                break
        finally:
            os.close(descriptor)
    return status, data


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def pin_in_linecache(version: SourceVersion) -> None:
    """Make tracebacks, ``inspect`` and debuggers show the text that runs, not the file.

    While a broken save sits on disk, the module keeps running its last good
    version: its source lines must come from that version. An entry without
    an mtime is never dropped by ``linecache.checkcache``.
    """
    try:
        lines = version.text.splitlines(keepends=True)
    except UndecodableSource:
        return  # never ran: linecache reads the file itself
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    entry = (len(version.data), None, lines, version.path)
    linecache.cache[version.path] = entry
    _PINS[version.path] = (entry, version.digest)


def is_pinned(version: SourceVersion) -> bool:
    """Does ``linecache`` hold this version's lines, as ``pin_in_linecache`` put them?"""
    entry, digest = _PINS.get(version.path, (None, None))
    return entry is not None and digest == version.digest and linecache.cache.get(version.path) is entry


_PINS: dict[str, tuple[tuple[int, None, list[str], str], str]] = {}  # path -> the entry pinned, its digest


def unpin_from_linecache(path: str) -> None:
    _PINS.pop(path, None)
    entry = linecache.cache.get(path)
    if entry is not None and len(entry) == 4 and entry[1] is None:
        del linecache.cache[path]

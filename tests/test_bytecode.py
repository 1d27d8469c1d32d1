"""Bytecode checked by content: a user module's ``__pycache__`` file is used only when it was
compiled from the very bytes hotswap reads, and a valid one is never written again."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

CHECKED_HASH = 0b11  # PEP 552: hash-based, checked against the source


def pyc_of(path: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(path)))


def flags_and_hash(pyc: Path) -> tuple[int, bytes]:
    data = pyc.read_bytes()
    return int.from_bytes(data[4:8], "little"), data[8:16]


def import_again(cell, name: str) -> object:
    """A fresh import of ``name`` in the session (as a new kernel importing it would)."""
    cell(f"import sys; sys.modules.pop({name!r}, None)")
    return cell(f"__import__({name!r}).f()")


def test_an_import_writes_checked_bytecode_once_and_then_uses_it(shell, modules, cell):
    path = modules.write(modules.name, "def f():\n    return 1\n")
    assert import_again(cell, modules.name) == 1
    pyc = pyc_of(path)
    flags, digest = flags_and_hash(pyc)
    assert flags == CHECKED_HASH and digest == importlib.util.source_hash(path.read_bytes())
    written = pyc.stat()

    assert import_again(cell, modules.name) == 1
    again = pyc.stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns), "a valid file was written again"


def test_an_edit_that_keeps_size_and_mtime_is_imported_from_its_source(shell, modules, cell):
    modules.write(modules.name, "def f():\n    return 1\n")
    assert import_again(cell, modules.name) == 1
    path = modules.save_keeping_stat(modules.name, "def f():\n    return 2\n")

    assert import_again(cell, modules.name) == 2
    assert flags_and_hash(pyc_of(path))[1] == importlib.util.source_hash(path.read_bytes())


def test_a_timestamp_bytecode_file_is_never_trusted(shell, modules, cell):
    """A plain Python (no hotswap) wrote a timestamp-based file for text 1; text 2 keeps size
    and mtime: Python alone would run text 1; hotswap runs text 2."""
    path = modules.write(modules.name, "def f():\n    return 1\n")
    subprocess.run(
        [sys.executable, "-c", f"import py_compile; py_compile.compile({str(path)!r}, doraise=True)"], check=True
    )
    assert flags_and_hash(pyc_of(path))[0] == 0  # timestamp-based
    modules.save_keeping_stat(modules.name, "def f():\n    return 2\n")

    assert import_again(cell, modules.name) == 2

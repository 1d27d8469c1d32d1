"""Adoption without IPython: does a module imported before hotswap was loaded run its file's text?

Each story imports a real module from a real file, then edits the file (as a
save between the import and ``%load_ext hotswap`` would) and asks again. The
answer comes two ways: exactly, from the code the import left in
``__pycache__``; and, without that file, by comparing the module with the text.
"""

from __future__ import annotations

import dataclasses
import importlib
import marshal
import os
import sys
from collections.abc import Callable
from types import CodeType, ModuleType
from typing import Any

import pytest

from hotswap._adopt import (
    _process_start_ns,
    code_it_was_imported_from,
    runs_this_text,
    saved_since_start,
)
from hotswap._source import SourceVersion, read_version
from hotswap._vocab import UNKNOWN

TEXT = """\
import os

X = 1
NAMES = ("a", "b")


def f():
    return X + 1


class Point:
    size = 2

    def area(self):
        return self.size ** 2


Point.tag = 5
"""

# How runs_this_text learns what the import ran: from __pycache__ (it looks itself), or, with
# no bytecode to read (``imported=None``), by comparing the module's values with the text.
WAYS = {"from __pycache__": UNKNOWN, "compared with the module": None}


@pytest.fixture
def imported(modules: Any) -> Callable[[str], tuple[ModuleType, str]]:
    """Write a module, import it (no hotswap anywhere), return it and its file."""

    def write_and_import(text: str) -> tuple[ModuleType, str]:
        path = str(modules.write(modules.name, text))
        module = importlib.import_module(modules.name)
        assert module.__file__ == path
        return module, path

    return write_and_import


def saved(path: str, text: str) -> SourceVersion:
    """Save new text over the file and read it back, as adoption reads it."""
    with open(path, "w") as file:
        file.write(text)
    return read_version(path)


@pytest.mark.parametrize("way", WAYS)
def test_a_module_runs_the_text_it_was_imported_from(imported: Any, way: str) -> None:
    module, path = imported(TEXT)
    assert (module.X, module.f(), module.Point().area(), module.Point.tag) == (1, 2, 4, 5)
    assert runs_this_text(module, read_version(path), WAYS[way]) is True


@pytest.mark.parametrize("way", WAYS)
def test_a_comment_added_at_the_end_of_a_line_still_is_the_text_that_runs(imported: Any, way: str) -> None:
    module, path = imported(TEXT)
    version = saved(path, TEXT.replace("X = 1\n", "X = 1  # the first\n"))
    assert runs_this_text(module, version, WAYS[way]) is True


EDITS = {
    "a function body changed": ("    return X + 1\n", "    return X + 2\n"),
    "a method body changed": ("        return self.size ** 2\n", "        return self.size ** 3\n"),
    "a constant changed": ("X = 1\n", "X = 3\n"),
    "a tuple constant changed": ('NAMES = ("a", "b")\n', 'NAMES = ("a", "c")\n'),
    "a class attribute set after the class changed": ("Point.tag = 5\n", "Point.tag = 6\n"),
    "a class attribute set after the class added": ("Point.tag = 5\n", "Point.tag = 5\nPoint.color = 'red'\n"),
    "a class attribute in its body added": ("    size = 2\n", "    size = 2\n    depth = 3\n"),
    "a function added": ("Point.tag = 5\n", "Point.tag = 5\n\n\ndef g():\n    return 0\n"),
    "a constant removed": ('NAMES = ("a", "b")\n', "\n"),  # (the lines after it stay where they were)
    "a function moved down a line": ("def f():\n", "\ndef f():\n"),
}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("edit", EDITS)
def test_a_file_changed_since_the_import_is_not_the_text_that_runs(imported: Any, way: str, edit: str) -> None:
    module, path = imported(TEXT)
    before, after = EDITS[edit]
    assert before in TEXT
    version = saved(path, TEXT.replace(before, after))
    assert runs_this_text(module, version, WAYS[way]) is False
    assert module.X == 1 and module.f() == 2  # the module itself is left as it was


def test_a_class_attribute_set_after_the_class_and_then_removed_is_not_the_text_that_runs(imported: Any) -> None:
    module, path = imported(TEXT)
    version = saved(path, TEXT.replace("Point.tag = 5\n", ""))
    assert module.Point.tag == 5  # still held by the class, set by no statement of the text
    assert runs_this_text(module, version, None) is False


def test_a_text_that_does_not_parse_is_not_the_text_that_runs(imported: Any) -> None:
    module, path = imported(TEXT)
    assert runs_this_text(module, saved(path, TEXT + "def broken(:\n"), None) is False


def test_the_code_it_was_imported_from_is_read_from_pycache(imported: Any) -> None:
    module, path = imported(TEXT)
    code = code_it_was_imported_from(module)
    assert isinstance(code, CodeType)
    assert code == compile(TEXT, path, "exec", dont_inherit=True)
    saved(path, TEXT.replace("X = 1\n", "X = 3\n"))  # the bytecode of the import is still there
    assert code_it_was_imported_from(module) == code


def test_without_bytecode_there_is_no_code_it_was_imported_from(
    imported: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    module, path = imported(TEXT)
    cached = module.__spec__.cached
    assert isinstance(cached, str) and not os.path.exists(cached)
    assert code_it_was_imported_from(module) is None
    assert runs_this_text(module, read_version(path)) is True  # compared with the module instead
    assert runs_this_text(module, saved(path, TEXT.replace("X = 1\n", "X = 3\n"))) is False


def test_bytecode_of_another_text_is_not_the_code_it_was_imported_from(imported: Any) -> None:
    module, path = imported(TEXT)
    cached = module.__spec__.cached
    other = compile(TEXT.replace("return X + 1", "return X + 9"), path, "exec", dont_inherit=True)
    with open(cached, "rb") as file:
        header = file.read(16)
    with open(cached, "wb") as file:
        file.write(header + marshal.dumps(other))
    assert code_it_was_imported_from(module) is None  # f's code is not the module's f's


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="the process start time is read in /proc")
def test_a_file_last_changed_before_the_process_started_holds_the_text_it_imported(imported: Any) -> None:
    _, path = imported(TEXT)
    now = read_version(path)
    assert saved_since_start(now) is True  # just written: compared with what runs
    started = _process_start_ns()
    assert started is not None and started < now.changed_at_ns()
    long_ago = started - 3_600 * 10**9
    before = dataclasses.replace(now, signature=(long_ago, long_ago, *now.signature[2:]))
    assert saved_since_start(before) is False

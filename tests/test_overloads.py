"""A name defined more than once at the top of a module (``@overload`` stubs and their
implementation, or a plain redefinition): its definitions pair by name and position, so a save
that leaves them alone re-runs nothing, and the name keeps its object."""

from __future__ import annotations

import sys

import pytest

import hotswap._ipython as hotswap_ipython

OVERLOADED = '''
from typing import overload

STRING = object()  # a module-level object others hold on to (click.STRING, a registry...)
CALLS = []


@overload
def convert(value: int) -> int: ...
@overload
def convert(value: str) -> str: ...
def convert(value):
    CALLS.append(value)
    return value * TIMES


TIMES = 2
'''


def _reran(shell, module: str) -> list:
    """What the last reload of ``module`` re-ran whole, and why (``None``: statement by statement)."""
    history = hotswap_ipython.session_of(shell).reloader.history
    outcomes = [event.outcome for event in history if event.outcome.module == module]
    assert outcomes, f"{module} was not reloaded"
    return outcomes[-1].whole_module


def test_a_comment_saved_in_a_module_with_overloads_re_runs_nothing(story, shell, cell):
    edit = story(OVERLOADED)
    cell("string, calls, convert = m.STRING, m.CALLS, m.convert\nconvert(3)")
    edit("# a comment at the top\n" + OVERLOADED)

    assert cell("m.STRING is string and m.CALLS is calls and m.convert is convert") is True
    assert cell("m.CALLS") == [3]
    assert _reran(shell, cell("m.__name__")) is None


def test_an_implementation_edited_under_its_overloads_is_upgraded_in_place(story, cell):
    edit = story(OVERLOADED)
    cell("convert, string = m.convert, m.STRING")
    edit(OVERLOADED.replace("return value * TIMES", "return value * TIMES * 10"))

    assert cell("convert(1), m.convert is convert, m.STRING is string") == (20, True, True)
    assert cell("m.CALLS") == [1]
    if sys.version_info >= (3, 11):
        assert cell("import typing\nlen(typing.get_overloads(m.convert))") == 2


def test_an_overload_added_runs_the_stubs_again_and_keeps_the_implementation_s_object(story, cell):
    edit = story(OVERLOADED)
    cell("convert, string = m.convert, m.STRING")
    added = "@overload\ndef convert(value: bytes) -> bytes: ...\ndef convert(value):"
    edit(OVERLOADED.replace("def convert(value):", added).replace("value * TIMES", "value * TIMES + value"))

    assert cell("convert(2), m.convert is convert, m.STRING is string") == (6, True, True)
    if sys.version_info >= (3, 11):
        assert cell("import typing\n[f.__annotations__['value'] for f in typing.get_overloads(m.convert)]")[-1] is bytes


def test_a_stub_edited_alone_leaves_the_implementation_as_it_was(story, cell):
    edit = story(OVERLOADED)
    cell("convert, string = m.convert, m.STRING")
    edit(OVERLOADED.replace("def convert(value: int) -> int: ...", "def convert(value: float) -> float: ..."))

    assert cell("convert(4), m.convert is convert, m.STRING is string") == (8, True, True)
    assert cell("m.convert.__annotations__") == {}


def test_a_plain_redefinition_keeps_the_last_one_as_a_fresh_import_would(story, cell):
    twice = "def g():\n    return 1\n\n\ndef g():\n    return 2\n\n\nSTATE = []\n"
    edit = story(twice)
    cell("g, state = m.g, m.STATE")
    edit(twice.replace("return 1", "return 10"))
    assert cell("m.g(), m.g is g, m.STATE is state") == (2, True, True)
    edit(twice.replace("return 1", "return 10").replace("return 2", "return 20"))

    assert cell("m.g(), m.g is g, m.STATE is state") == (20, True, True)


def test_an_overloaded_method_s_implementation_is_upgraded_in_place(story, cell):
    text = '''
from typing import overload


class Box:
    @overload
    def get(self, key: int) -> int: ...
    @overload
    def get(self, key: str) -> str: ...
    def get(self, key):
        return key
'''
    edit = story(text)
    cell("box, Box = m.Box(), m.Box")
    edit(text.replace("return key", "return key, 'new'"))

    assert cell("box.get(1), m.Box is Box") == ((1, "new"), True)


@pytest.mark.parametrize("when", ["before", "after"])
def test_overloads_in_a_module_follow_the_names_they_read(story, cell, when):
    """The implementation reads ``TIMES``, bound after it: an edit of ``TIMES`` reaches calls."""
    edit = story(OVERLOADED)
    if when == "after":
        edit("# first save\n" + OVERLOADED)
        cell("pass")
    edit(OVERLOADED.replace("TIMES = 2", "TIMES = 5"))

    assert cell("m.convert(2)") == 10

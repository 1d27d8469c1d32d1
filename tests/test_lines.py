"""Tracebacks and source tell the truth after every edit: exact lines, exact texts."""

from __future__ import annotations

import re
import textwrap

import pytest

BASE = textwrap.dedent(
    """
    def grow():
        return 1

    def fails():
        raise ValueError("boom")

    handler = lambda x: 1 / x

    def make():
        def inner():
            raise KeyError("inner")
        return inner

    class Tool:
        def first(self):
            return 1

        def fails(self):
            raise RuntimeError("method")
    """
)

PADDED = BASE.replace("def grow():\n    return 1", "def grow():\n    a = 1\n    b = 2\n    c = 3\n    return 1")
PADDED_CLASS = PADDED.replace(
    "    def first(self):\n        return 1", "    def first(self):\n        x = 1\n        y = 2\n        return 1"
)

RAISE_LINE = """
import traceback
def raise_line(call):
    try:
        call()
    except Exception as error:
        entry = traceback.extract_tb(error.__traceback__)[-1]
        return entry.lineno, entry.line
"""


def line_of(text: str, needle: str) -> int:
    return text.splitlines().index(needle) + 1


@pytest.fixture
def lines(story, cell):
    save = story(BASE)
    cell(RAISE_LINE)
    cell("inner = m.make(); tool = m.Tool()")
    return save


@pytest.mark.parametrize(
    "call, needle",
    [
        ("m.fails", '    raise ValueError("boom")'),
        ("lambda: m.handler(0)", "handler = lambda x: 1 / x"),
        ("inner", '        raise KeyError("inner")'),
        ("m.make()", '        raise KeyError("inner")'),  # a closure made after the edit
        ("tool.fails", '        raise RuntimeError("method")'),
    ],
    ids=["function", "lambda", "closure-made-before", "nested-function", "method"],
)
def test_lines_inserted_above_report_the_new_lines(lines, cell, call, needle):
    lines(PADDED_CLASS)
    assert cell(f"raise_line({call})") == (line_of(PADDED_CLASS, needle), needle.strip())


def test_inspect_getsource_of_moved_code(lines, cell):
    lines(PADDED_CLASS)
    assert cell("import inspect; inspect.getsource(m.fails)") == 'def fails():\n    raise ValueError("boom")\n'
    assert cell("inspect.getsourcelines(m.Tool.fails)[1]") == line_of(PADDED_CLASS, "    def fails(self):")
    assert cell("m.fails.__code__.co_firstlineno") == line_of(PADDED_CLASS, "def fails():")


def test_while_a_broken_save_is_on_disk_tracebacks_show_the_running_text(lines, modules, cell):
    lines(PADDED)
    cell("m.grow()")  # PADDED is applied
    broken = PADDED.replace("def grow():", "def grow(:")  # a syntax error above
    broken = "# a new first line\n" + broken
    modules.write(modules.name, broken)
    needle = '    raise ValueError("boom")'
    assert cell("raise_line(m.fails)") == (line_of(PADDED, needle), needle.strip())  # the text that ran
    assert cell("import inspect; inspect.getsource(m.grow).splitlines()[0]") == "def grow():"

    fixed = "# a new first line\n" + PADDED
    modules.write(modules.name, fixed)
    assert cell("raise_line(m.fails)") == (line_of(fixed, needle), needle.strip())


def test_ipython_traceback_display_shows_the_right_line(lines, modules, plain_shell, capsys):
    lines(PADDED_CLASS)
    capsys.readouterr()
    plain_shell.run_cell("m.fails()")
    shown = capsys.readouterr()
    text = re.sub(r"\x1b\[[0-9;]*m", "", shown.out + shown.err)
    needle = '    raise ValueError("boom")'
    assert re.search(rf"{line_of(PADDED_CLASS, needle)}\s+raise ValueError\(\"boom\"\)", text), text


def test_many_edit_cycles_keep_reported_lines_equal_to_a_fresh_import(lines, modules, cell):
    cell(
        "import types\n"
        "def first_lines(ns):\n"
        "    out = {}\n"
        "    for k, v in ns.items():\n"
        "        if isinstance(v, types.FunctionType):\n"
        "            out[k] = v.__code__.co_firstlineno\n"
        "        elif isinstance(v, type):\n"
        "            out.update({f'{k}.{n}': f.__code__.co_firstlineno for n, f in vars(v).items() if isinstance(f, types.FunctionType)})\n"
        "    return out\n"
    )
    path = str(modules.path(modules.name))
    versions = [PADDED, PADDED_CLASS, BASE, "\n\n" + BASE, PADDED_CLASS.replace("handler", "handler2"), BASE]
    for version in versions:
        modules.write(modules.name, version)
        fresh = cell(f"ns = {{}}; exec(compile(open({path!r}).read(), {path!r}, 'exec'), ns); first_lines(ns)")
        assert cell("first_lines(vars(m))") == fresh

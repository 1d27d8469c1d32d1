"""The typical story, end to end, with and without hotswap: the scenario needs hotswap."""

from __future__ import annotations

import hotswap._ipython as hotswap_ipython

LIBRARY_V1 = """
    def f():
        return "f v1"

    class Model:
        def __init__(self, weight):
            self.weight = weight

        def predict(self, x):
            return self.weight * x
"""

LIBRARY_V2 = """
    def f():
        return "f v2"

    class Model:
        def __init__(self, weight):
            self.weight = weight

        def predict(self, x):
            return self.weight * x + 1

        def explain(self):
            return f"weight={self.weight}"
"""


def edit_story(modules, cell):
    """Import, build an object, edit the file, run the next cell; return what it saw."""
    modules.write(modules.name, LIBRARY_V1)
    cell(f"from {modules.name} import f, Model")
    cell("model = Model(3)")
    assert cell("f(), model.predict(10)") == ("f v1", 30)
    modules.write(modules.name, LIBRARY_V2)
    return cell("f(), model.predict(10), hasattr(model, 'explain')")


def test_without_hotswap_the_old_code_keeps_running(plain_shell, modules, cell):
    assert hotswap_ipython.session_of(plain_shell) is None
    assert plain_shell.find_line_magic("autoreload") is None

    assert edit_story(modules, cell) == ("f v1", 30, False)


def test_with_hotswap_the_same_story_runs_the_new_code(shell, modules, cell):
    cell("%autoreload 2")

    assert edit_story(modules, cell) == ("f v2", 31, True)
    assert cell("model.explain()") == "weight=3"


def test_without_hotswap_a_plain_reload_misses_an_edit_that_keeps_size_and_mtime(plain_shell, modules, cell):
    """A control for the freshness tests: the import system trusts size and mtime."""
    text = "def f():\n    return 'v1'\n"
    modules.write(modules.name, text)
    cell(f"import importlib, {modules.name} as m")
    modules.save_keeping_stat(modules.name, text.replace("v1", "v2"))

    assert cell("importlib.reload(m).f()") == "v1"  # the stale bytecode won

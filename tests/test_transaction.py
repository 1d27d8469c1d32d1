"""The transaction of a reload, and the short way a dependent follows, tested directly: real
modules made from real files, no IPython."""

from __future__ import annotations

import importlib
import itertools
import sys

import pytest

from hotswap._apply import reload_module
from hotswap._follow import follow_unchanged
from hotswap._outcomes import Failure, Reloaded
from hotswap._source import read_version

_counter = itertools.count()


@pytest.fixture
def load(tmp_path, monkeypatch):
    """``load(text, stem)``: write ``text`` to a module file of a unique name, import it, and
    return ``(module, write)``, where ``write(text)`` saves a new version and returns it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names = []

    def make(text, stem="txmod"):
        name = f"{stem}_{next(_counter)}"
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        importlib.invalidate_caches()
        module = importlib.import_module(name)
        names.append(name)

        def write(new_text):
            path.write_text(new_text)
            return read_version(str(path))

        return module, write

    yield make
    for name in names:
        sys.modules.pop(name, None)


def identical(namespace):
    """A copy of a namespace to compare by identity: name -> id of its object."""
    return {name: id(value) for name, value in namespace.items()}


def test_a_reload_whose_new_text_raises_leaves_the_namespace_exactly_as_it_was(load):
    module, write = load("A = 1\nITEMS = [1]\n\ndef f():\n    return 1\n")
    running = read_version(module.__file__)
    before, f = identical(module.__dict__), module.f

    version = write("A = 2\nITEMS = [2]\nCREATED = 3\n\ndef f():\n    return 2\n\nraise RuntimeError('boom')\n")
    outcome = reload_module(module, version, running)

    assert isinstance(outcome, Failure)
    assert "boom" in outcome.error
    assert identical(module.__dict__) == before
    assert "CREATED" not in module.__dict__
    assert (module.A, module.ITEMS, module.f) == (1, [1], f)
    assert f() == 1


@pytest.mark.parametrize("whole", [None, "forced"], ids=["partial", "whole"])
def test_an_in_place_class_upgrade_is_rolled_back_when_the_reload_fails(load, whole):
    text = "class Point:\n    def norm(self):\n        return 1\n\nP = Point()\n"
    module, write = load(text)
    running = read_version(module.__file__)
    point_class, instance = module.Point, module.P
    norm_code = point_class.norm.__code__

    version = write(text.replace("return 1", "return 2") + "\nraise ValueError('after the class')\n")
    outcome = reload_module(module, version, running, whole=whole)

    assert isinstance(outcome, Failure)
    assert module.Point is point_class
    assert point_class.norm.__code__ is norm_code
    assert instance.norm() == 1
    assert module.P is instance


@pytest.mark.parametrize("whole", [None, "forced"], ids=["partial", "whole"])
def test_a_committed_class_upgrade_keeps_the_class_and_its_instances(load, whole):
    text = "class Point:\n    def norm(self):\n        return 1\n\nP = Point()\n"
    module, write = load(text)
    running = read_version(module.__file__)
    point_class, instance = module.Point, module.P

    version = write(text.replace("return 1", "return 2"))
    outcome = reload_module(module, version, running, whole=whole)

    assert isinstance(outcome, Reloaded)
    assert module.Point is point_class
    assert isinstance(module.P, point_class)
    assert instance.norm() == 2
    assert point_class().norm() == 2


CORE = "THRESHOLD = 100\n"


@pytest.fixture
def dependent(load):
    """``dependent(text)``: a module of ``text`` (``{core}`` filled in with a core module's name,
    whose ``THRESHOLD`` is 100), and the version it runs."""

    def make(text):
        core, _ = load(CORE, "txcore")
        module, _ = load(text.format(core=core.__name__), "txdep")
        return module, read_version(module.__file__), core.__name__

    return make


def test_plain_arithmetic_follows_the_short_way(dependent):
    module, version, core = dependent("from {core} import THRESHOLD\nLIMIT = THRESHOLD * 2\nHALF = LIMIT / 4\n")
    assert (module.LIMIT, module.HALF) == (200, 50.0)

    outcome = follow_unchanged(module, version, {"THRESHOLD": (100, 101)}, (core,))

    assert isinstance(outcome, Reloaded)
    assert (module.THRESHOLD, module.LIMIT, module.HALF) == (101, 202, 50.5)
    assert outcome.followed == ("THRESHOLD",)
    assert outcome.rebound == ("LIMIT", "HALF")
    assert outcome.changes == {"THRESHOLD": (100, 101), "LIMIT": (200, 202), "HALF": (50.0, 50.5)}
    assert outcome.after == (core,)


@pytest.mark.parametrize(
    "text",
    [
        "from {core} import THRESHOLD\nLIMIT = THRESHOLD * 2\nRATIO = 100 // (THRESHOLD - 101)\n",
        "from {core} import THRESHOLD\nLIMIT = THRESHOLD * 2\nSEEN = [LIMIT]\nRATIO = 100 // (THRESHOLD - 101)\n",
    ],
    ids=["batch", "statement-by-statement"],
)
def test_a_statement_that_raises_rolls_back_every_write(dependent, text):
    module, version, core = dependent(text)
    before = identical(module.__dict__)
    assert (module.LIMIT, module.RATIO) == (200, -100)

    outcome = follow_unchanged(module, version, {"THRESHOLD": (100, 101)}, (core,))

    assert isinstance(outcome, Failure)
    assert "ZeroDivisionError" in outcome.error
    assert identical(module.__dict__) == before
    assert (module.THRESHOLD, module.LIMIT, module.RATIO) == (100, 200, -100)


def test_a_name_that_gains_a_function_goes_back_to_the_general_way(dependent):
    module, version, core = dependent("from {core} import THRESHOLD\nLIMIT = THRESHOLD\nTWICE = LIMIT * 2\n")
    before = identical(module.__dict__)

    def handler():
        return 1

    outcome = follow_unchanged(module, version, {"THRESHOLD": (100, handler)}, (core,))

    assert outcome is None
    assert identical(module.__dict__) == before
    assert (module.THRESHOLD, module.LIMIT, module.TWICE) == (100, 100, 200)

"""A broken edit breaks nothing: the module stays exactly as it was, the user is told once."""

from __future__ import annotations

import re

import pytest

GOOD = """
    COUNT = 1

    def f():
        return "good"

    class Model:
        def predict(self):
            return "old predict"
"""


@pytest.fixture
def imported(shell, modules, cell):
    """``GOOD`` imported in mode 2, with ``f``, ``Model`` and an instance taken."""
    modules.write(modules.name, GOOD)
    cell("%autoreload 2")
    cell(f"import {modules.name} as m; from {modules.name} import f, Model; obj = Model()")
    return modules


def messages_about(text: str, module: str) -> list[str]:
    """The reports of one module (each starts with ``hotswap: <module>``)."""
    return re.findall(rf"hotswap: \[autoreload of {re.escape(module)} failed[^\n]*", text)


def test_syntax_error_keeps_the_old_code_and_says_where_once(imported, shell, cell, capsys):
    modules = imported
    path = modules.write(
        modules.name,
        """
        COUNT = 1

        def f():
            return "new"

        def broken(:
            pass
        """,
    )
    capsys.readouterr()

    result = shell.run_cell("f()")
    assert result.success and result.result == "good"
    err = capsys.readouterr().err
    assert len(messages_about(err, modules.name)) == 1, err
    assert f"{path}:7" in err
    assert "SyntaxError" in err

    assert cell("f()") == "good"
    assert cell("obj.predict()") == "old predict"
    again = capsys.readouterr()
    assert messages_about(again.out + again.err, modules.name) == []  # reported once, not per cell


def test_a_fixed_save_after_a_syntax_error_is_picked_up(imported, cell, capsys):
    modules = imported
    modules.write(modules.name, "def f(:\n    return 'broken'\n")
    assert cell("f()") == "good"

    modules.write(modules.name, GOOD.replace('"good"', '"fixed"'))
    assert cell("f()") == "fixed"
    capsys.readouterr()


def test_the_same_broken_version_is_reported_once_even_after_a_touch(imported, cell, capsys):
    modules = imported
    path = modules.write(modules.name, "def f(:\n    pass\n")
    cell("1")
    capsys.readouterr()
    path.write_text(path.read_text())  # saved again, same text: nothing new to say

    cell("2")
    captured = capsys.readouterr()
    assert messages_about(captured.out + captured.err, modules.name) == []
    modules.write(modules.name, GOOD.replace('"good"', '"fixed"'))
    assert cell("f()") == "fixed"


def test_exception_at_import_time_leaves_the_module_exactly_as_before(imported, shell, cell, capsys):
    modules = imported
    path = modules.write(
        modules.name,
        """
        COUNT = 2

        def f():
            return "new"

        def brand_new():
            return "should not exist"

        class Model:
            def predict(self):
                return "new predict"

        1 / 0
        """,
    )
    capsys.readouterr()

    result = shell.run_cell("f()")
    assert result.success and result.result == "good"
    err = capsys.readouterr().err
    assert len(messages_about(err, modules.name)) == 1, err
    assert "ZeroDivisionError" in err and f"{path}:14" in err

    assert cell("m.f(), m.f is f") == ("good", True)
    assert cell("hasattr(m, 'brand_new')") is False
    assert cell("m.COUNT") == 1
    assert cell("obj.predict(), m.Model().predict(), m.Model is Model") == ("old predict", "old predict", True)

    modules.write(modules.name, GOOD.replace('"good"', '"fixed"'))
    assert cell("f()") == "fixed"


def test_exception_in_a_whole_module_rerun_leaves_the_module_exactly_as_before(imported, cell, capsys):
    modules = imported
    cell("%autoreload --full 2")
    modules.write(
        modules.name,
        """
        COUNT = 2

        def f():
            return "new"

        def brand_new():
            return 1

        class Model:
            def predict(self):
                return "new predict"

        raise RuntimeError("boom")
        """,
    )

    assert cell("f(), m.COUNT, hasattr(m, 'brand_new')") == ("good", 1, False)
    assert cell("obj.predict(), m.Model is Model") == ("old predict", True)
    assert "RuntimeError: boom" in capsys.readouterr().err

    modules.write(modules.name, GOOD.replace('"good"', '"fixed"'))
    assert cell("f()") == "fixed"


@pytest.mark.parametrize("mode", ["2", "--full 2"])
def test_name_error_in_a_class_body_leaves_earlier_classes_whole(shell, modules, cell, capsys, mode):
    modules.write(
        modules.name,
        """
        class First:
            def who(self):
                return "first v1"

        class Second:
            def who(self):
                return "second v1"
        """,
    )
    cell(f"%autoreload {mode}")
    cell(f"from {modules.name} import First, Second; a = First(); b = Second()")
    modules.write(
        modules.name,
        """
        class First:
            def who(self):
                return "first v2"

            def extra(self):
                return "extra"

        class Second:
            size = undefined_name

            def who(self):
                return "second v2"
        """,
    )

    assert cell("a.who(), b.who()") == ("first v1", "second v1")
    assert cell("hasattr(First, 'extra'), hasattr(a, 'extra')") == (False, False)
    err = capsys.readouterr().err
    assert "NameError" in err and "undefined_name" in err

    modules.write(
        modules.name,
        """
        class First:
            def who(self):
                return "first v3"

        class Second:
            def who(self):
                return "second v3"
        """,
    )
    assert cell("a.who(), b.who()") == ("first v3", "second v3")


def test_system_exit_at_top_level_is_rolled_back_and_the_cell_runs(imported, shell, cell, capsys):
    modules = imported
    modules.write(
        modules.name,
        """
        import sys
        COUNT = 2

        def f():
            return "new"

        sys.exit(3)
        """,
    )

    result = shell.run_cell("f()")
    assert result.success and result.result == "good"
    assert cell("m.COUNT, hasattr(m, 'sys')") == (1, False)
    assert "SystemExit" in capsys.readouterr().err

    modules.write(modules.name, GOOD.replace('"good"', '"fixed"'))
    assert cell("f()") == "fixed"


def test_a_failing_module_does_not_stop_the_others(shell, modules, cell, capsys):
    broken, fine = modules.named("broken"), modules.named("fine")
    modules.write(broken, "def f():\n    return 1\n")
    modules.write(fine, "def f():\n    return 1\n")
    cell("%autoreload 2")
    cell(f"import {broken}, {fine}")
    modules.write(broken, "def f():\n    return 2\n\nraise ValueError('no')\n")
    modules.write(fine, "def f():\n    return 2\n")

    assert cell(f"{broken}.f(), {fine}.f()") == (1, 2)
    assert "ValueError: no" in capsys.readouterr().err


def test_autoreload_now_retries_a_version_that_failed(shell, modules, cell, capsys):
    flag = modules.named("flag")
    modules.write(flag, "READY = False\n")
    modules.write(modules.name, "def f():\n    return 1\n")
    cell("%autoreload 2")
    cell(f"import {modules.name} as m, {flag} as flag")
    cell("%autoreload 0")
    modules.write(
        modules.name,
        f"import {flag}\nif not {flag}.READY:\n    raise RuntimeError('not ready')\n\ndef f():\n    return 2\n",
    )
    cell("%autoreload now")
    assert cell("m.f()") == 1
    assert "RuntimeError: not ready" in capsys.readouterr().err

    cell("flag.READY = True")
    cell("%autoreload now")  # the same text: tried again because asked to
    assert cell("m.f()") == 2


REGISTRY = """_plugins = {{}}
_order = []


class Plugin:
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _plugins[cls.__name__] = cls
        _order.append(cls)


class PA(Plugin):
    kind = {kind}
{extra}"""


def test_a_failed_save_leaves_class_registries_as_they_were(story, cell, capsys):
    edit = story(REGISTRY.format(kind=0, extra=""))
    cell("first_pa = m.PA")
    # PA changed, PB new, then the import fails: neither the new PA nor PB stays registered
    edit(REGISTRY.format(kind=1, extra="\n\nclass PB(Plugin):\n    pass\n\n\n_boom = 1 / 0\n"))

    assert cell("(m.PA is first_pa, m.PA.kind, sorted(m._plugins), m._plugins['PA'] is m.PA)") == (True, 0, ["PA"], True)
    assert cell("m._order == [m.PA]") is True
    assert "ZeroDivisionError" in capsys.readouterr().err

    edit(REGISTRY.format(kind=2, extra="\n\nclass PB(Plugin):\n    pass\n"))  # fixed: both registered
    assert cell("(m.PA is first_pa, m.PA.kind, sorted(m._plugins), m._plugins['PA'] is m.PA)") == (True, 2, ["PA", "PB"], True)


@pytest.mark.parametrize("whole", [False, True], ids=["statements", "whole module"])
def test_a_failed_save_undoes_attributes_its_statements_set_on_kept_objects(story, cell, whole):
    future = "from __future__ import annotations\n\n" if whole else ""  # a new __future__: whole re-run
    edit = story("class Point:\n    x = 1\n\n\nclass Box:\n    pass\n")
    edit(f"{future}class Point:\n    x = 1\n\n\nclass Box:\n    pass\n\n\nPoint.tag = 5\nPoint.x += 1\nBox.a, Box.b = 1, 2\n_boom = 1 / 0\n")

    assert cell("(hasattr(m.Point, 'tag'), m.Point.x, hasattr(m.Box, 'a'), hasattr(m.Box, 'b'))") == (False, 1, False, False)


def test_a_compile_error_the_parser_lets_through_runs_nothing(story, cell, capsys):
    edit = story("class Point:\n    x = 1\n")
    edit("class Point:\n    x = 1\n\n\nPoint.tag = 5\n\n\nreturn 5\n")

    assert cell("hasattr(m.Point, 'tag')") is False
    err = capsys.readouterr().err
    assert "'return' outside function" in err and ".py:8" in err, err


def test_a_changed_body_that_does_not_compile_leaves_the_module_as_it_was(story, cell, capsys):
    edit = story("class Point:\n    x = 1\n\n\ndef f():\n    return 1\n")
    edit("class Point:\n    x = 1\n\n\nPoint.tag = 5\n\n\ndef f():\n    nonlocal y\n    return 2\n")

    assert cell("(m.f(), hasattr(m.Point, 'tag'))") == (1, False)
    assert "nonlocal" in capsys.readouterr().err


PROXY = """
class Proxy:
    '''Like a context-bound proxy (flask's current_app) outside its context: every attribute
    read raises, ``__class__`` included, which ``isinstance`` reads.'''

    def __getattribute__(self, name):
        raise RuntimeError(f"working outside of context: {name}")


CURRENT = Proxy()
"""


def test_objects_whose_every_attribute_raises_do_not_stop_a_reload(shell, modules, cell, capsys):
    """A proxy held by a module and by the session, where the reload looks for closures, caches and
    registries: it is passed over, never read."""
    proxies, m = modules.named("proxies"), modules.named("m")
    modules.write(proxies, PROXY)
    maker = "def make():\n    def inner():\n        return 1\n\n    return inner\n\n\nclass K:\n    app = CURRENT\n"
    modules.write(m, f"from {proxies} import CURRENT\n\n\n{maker}")
    cell("%autoreload 2")
    cell(f"import {m} as mod\nfrom {proxies} import CURRENT as here\nmade, box = mod.make(), [here]")
    edited = maker.replace("return 1", "return 2").replace("app = CURRENT", "app = CURRENT\n    X = 1")
    modules.write(m, f"from {proxies} import CURRENT\n\n\n{edited}\n\nclass Base:\n    pass\n")

    assert cell("made(), mod.Base.__name__, mod.K.X") == (2, "Base", 1)
    assert "internal error" not in capsys.readouterr().err

"""What libraries derive from a class is made again when the class is upgraded in place.

``abc`` caches ``isinstance`` answers, ``typing`` lists a protocol's members and hooks it
by a closure over the class, pydantic compiles a validator that calls the class's functions.
The class keeps its identity through an edit, so each of these would answer for the old body:
the stories below fail without ``_libraries``' rebuilds.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hotswap._libraries import KeptClass, Rebuild, Upgraded, rebuild_derived
from hotswap._undo import Transaction

# -- abc and typing ------------------------------------------------------------------

PROTOCOL = """
from typing import Protocol, runtime_checkable


@runtime_checkable
class Closable(Protocol):
    def close(self): ...


class File:
    def close(self):
        pass
"""


def test_an_isinstance_answered_before_a_protocol_gains_a_method_is_answered_again(story, cell):
    edit = story(PROTOCOL)
    assert cell("f = m.File()\nisinstance(f, m.Closable)") is True
    edit(PROTOCOL.replace("    def close(self): ...", "    def close(self): ...\n    def flush(self): ..."))

    assert cell("isinstance(f, m.Closable), isinstance(m.File(), m.Closable)") == (False, False)
    assert cell("isinstance(1, m.Closable)") is False  # still runtime-checkable: no TypeError


def test_a_protocol_edited_before_any_check_stays_runtime_checkable(story, cell):
    """``typing`` hooks a protocol's checks by a closure over its class: the kept class, not the
    one its new body built (which ``@runtime_checkable`` never saw)."""
    edit = story(PROTOCOL)
    edit(PROTOCOL.replace("    def close(self): ...", "    def close(self): ...\n    def flush(self): ..."))

    assert cell("isinstance(m.File(), m.Closable), issubclass(int, m.Closable)") == (False, False)


def test_a_class_that_gains_the_protocols_method_becomes_an_instance(story, cell):
    edit = story(PROTOCOL.replace("    def close(self):\n        pass", "    pass"))
    assert cell("f = m.File()\nisinstance(f, m.Closable)") is False
    edit(PROTOCOL)

    assert cell("isinstance(f, m.Closable)") is True


def test_a_class_that_loses_iter_is_no_longer_iterable(story, cell):
    text = "class Bag:\n    def __iter__(self):\n        return iter(())\n"
    edit = story(text)
    assert cell("import collections.abc\nb = m.Bag()\nisinstance(b, collections.abc.Iterable)") is True
    edit("class Bag:\n    pass\n")

    assert cell("isinstance(b, collections.abc.Iterable)") is False


def test_a_class_that_drops_an_abc_base_is_no_longer_an_instance_of_it(story, cell):
    text = "import abc\n\n\nclass Base(abc.ABC):\n    pass\n\n\nclass Other(abc.ABC):\n    pass\n\n\nclass Leaf(Base):\n    pass\n"
    edit = story(text)
    assert cell("leaf = m.Leaf()\nisinstance(leaf, m.Base), isinstance(leaf, m.Other)") == (True, False)
    edit(text.replace("class Leaf(Base):", "class Leaf(Other):"))

    assert cell("isinstance(leaf, m.Base), isinstance(leaf, m.Other)") == (False, True)


def test_a_subclass_lacking_a_method_its_abc_made_abstract_can_no_longer_be_made(shell, modules, cell):
    base, impl = modules.named("base"), modules.named("impl")
    text = "import abc\n\n\nclass Base(abc.ABC):\n    @abc.abstractmethod\n    def f(self): ...\n"
    modules.write(base, text)
    modules.write(impl, f"from {base} import Base\n\n\nclass Impl(Base):\n    def f(self):\n        return 1\n")
    cell("%autoreload 2")
    assert cell(f"import {impl} as i\ni.Impl().f()") == 1
    modules.write(base, text + "\n    @abc.abstractmethod\n    def g(self): ...\n")

    said = cell("try:\n    i.Impl()\nexcept TypeError as why:\n    said = str(why)\nsaid")
    assert "abstract method" in said and said.rstrip("'").endswith("g")  # 3.12+ quotes the name
    modules.write(base, text)
    assert cell("i.Impl().f()") == 1


DISPATCH = """
import functools


class Base:
    pass


class Other:
    pass


class Leaf(Base):
    pass


@functools.singledispatch
def show(x):
    return "any"


@show.register
def _(x: Base):
    return "base"


@show.register
def _(x: Other):
    return "other"


class Shelf:
    @functools.singledispatchmethod
    def put(self, x):
        return "any"

    @put.register
    def _(self, x: Base):
        return "base"

    @put.register
    def _(self, x: Other):
        return "other"
"""


def test_singledispatch_chooses_again_for_a_class_whose_bases_changed(story, cell):
    edit = story(DISPATCH)
    cell(
        "import functools\n"
        "@functools.singledispatch\ndef mine(x):\n    return 'any'\n"
        "mine.register(m.Base, lambda x: 'base')\nmine.register(m.Other, lambda x: 'other')\n"
        "leaf, shelf = m.Leaf(), m.Shelf()"
    )
    assert cell("m.show(leaf), shelf.put(leaf), mine(leaf)") == ("base", "base", "base")
    edit(DISPATCH.replace("class Leaf(Base):", "class Leaf(Other):"))

    assert cell("m.show(leaf), shelf.put(leaf), mine(leaf)") == ("other", "other", "other")


def test_a_sub_protocol_in_another_module_lists_the_members_its_base_gained(shell, modules, cell):
    base, sub = modules.named("base"), modules.named("sub")
    modules.write(base, PROTOCOL)
    modules.write(sub, f"""
        from typing import Protocol, runtime_checkable
        from {base} import Closable


        @runtime_checkable
        class Stream(Closable, Protocol):
            def read(self): ...


        class Reader:
            def close(self):
                pass

            def read(self):
                pass
        """)
    cell("%autoreload 2")
    assert cell(f"import {sub} as s\nr = s.Reader()\nisinstance(r, s.Stream)") is True
    modules.write(base, PROTOCOL.replace("    def close(self): ...", "    def close(self): ...\n    def flush(self): ..."))

    assert cell("isinstance(r, s.Stream)") is False
    assert cell("hasattr(s.Stream, '__protocol_attrs__') <= ('flush' in getattr(s.Stream, '__protocol_attrs__', ()))")


def test_a_failed_save_leaves_the_protocol_answering_as_before(story, cell):
    edit = story(PROTOCOL)
    assert cell("f = m.File()\nisinstance(f, m.Closable)") is True
    edit(PROTOCOL.replace("    def close(self): ...", "    def close(self): ...\n    def flush(self): ...") + "\n1 / 0\n")

    assert cell("isinstance(f, m.Closable), isinstance(1, m.Closable)") == (True, False)


# -- pydantic ------------------------------------------------------------------------

MODEL = """
from pydantic import BaseModel, computed_field, field_serializer, field_validator, model_validator


class Order(BaseModel):
    qty: int

    @field_validator("qty")
    @classmethod
    def check(cls, value):
        return value + 1

    @model_validator(mode="after")
    def settle(self):
        self.qty *= 1
        return self

    @field_serializer("qty")
    def show(self, value):
        return value

    @computed_field
    @property
    def double(self) -> int:
        return self.qty * 2
"""

WITH_NOTE = MODEL.replace("    qty: int\n", "    qty: int\n    note: str = 'none'\n")


def test_a_validator_edited_after_its_model_gained_a_field_reaches_validation(story, cell):
    edit = story(MODEL)
    assert cell("m.Order(qty=1).qty") == 2
    edit(WITH_NOTE)
    assert cell("m.Order(qty=1).qty, m.Order(qty=1).note") == (2, "none")
    edit(WITH_NOTE.replace("return value + 1", "return value + 10"))

    assert cell("m.Order(qty=1).qty") == 11


def test_every_kind_of_pydantic_decorator_follows_a_later_body_edit(story, cell):
    edit = story(MODEL)
    edit(WITH_NOTE)
    assert cell("m.Order(qty=1).model_dump()") == {"qty": 2, "note": "none", "double": 4}
    edit(
        WITH_NOTE.replace("self.qty *= 1", "self.qty *= 3")
        .replace("        return value\n", "        return -value\n")
        .replace("return self.qty * 2", "return self.qty * 100")
    )

    assert cell("o = m.Order(qty=1)\no.qty") == 6
    assert cell("o.model_dump()") == {"qty": -6, "note": "none", "double": 600}


def test_an_object_made_before_a_field_was_added_reads_its_default(story, shell, cell, capsys):
    edit = story(MODEL)
    cell("old = m.Order(qty=1)")
    capsys.readouterr()
    edit(WITH_NOTE)
    cell("pass")

    assert "objects made before have no field 'note': they read its default" in capsys.readouterr().err
    assert cell("old.model_dump()") == {"qty": 2, "note": "none", "double": 4}  # before any read of it
    assert cell("old.note") == "none"
    assert cell("isinstance(old, m.Order), m.Order(qty=1).note") == (True, "none")
    edit(WITH_NOTE.replace("return value + 1", "return value + 2"))  # a body: the stand-in stays
    assert cell("m.Order.model_validate({'qty': 1}).qty, old.note") == (3, "none")


def test_an_object_made_before_a_field_was_added_holds_it_wherever_pydantic_reads_all_fields(story, cell):
    """pydantic's serializer, ``==``, ``repr`` and copies read the object's ``__dict__`` at once."""
    edit = story(MODEL)
    cell("import copy\nold, other = m.Order(qty=1), m.Order(qty=1)")
    edit(WITH_NOTE)

    assert cell("other == m.Order(qty=1), m.Order(qty=1) == old") == (True, True)
    assert cell("repr(old), old.model_dump_json()") == (
        "Order(qty=2, note='none', double=4)", '{"qty":2,"note":"none","double":4}'
    )
    assert cell("copy.deepcopy(other).note, other.model_copy().note, dict(other)['note']") == ("none",) * 3
    edit(WITH_NOTE.replace("return value + 1", "return value + 2"))  # its next edits keep them complete
    assert cell("fresh = m.Order(qty=0)\nfresh == old, m.Order.model_dump is not None") == (True, True)


def test_an_object_made_before_a_required_field_says_why_it_lacks_it(story, cell):
    edit = story(MODEL)
    cell("old = m.Order(qty=1)")
    edit(MODEL.replace("    qty: int\n", "    qty: int\n    owner: str\n"))

    assert "made before the field 'owner' existed" in cell(
        "try:\n    old.owner\nexcept AttributeError as why:\n    message = str(why)\nmessage"
    )
    assert cell("m.Order(qty=1, owner='me').owner") == "me"


def test_a_broken_model_edit_leaves_validation_as_it_was(story, cell):
    edit = story(MODEL)
    edit(WITH_NOTE)
    cell("pass")
    edit(WITH_NOTE.replace("note: str = 'none'", "note: str = 'none'\n    bad: int = undefined_name"))

    assert cell("m.Order(qty=1).qty, m.Order(qty=1).note") == (2, "none")
    edit(WITH_NOTE.replace("return value + 1", "return value + 5"))
    assert cell("m.Order(qty=1).qty") == 6


# -- the extension point -------------------------------------------------------------


def test_a_rebuild_runs_only_for_an_imported_library_and_writes_through_the_transaction(monkeypatch):
    class Shape:
        pass

    calls: list[tuple[str, list[type], list[dict]]] = []
    namespace = {"x": 1}

    def record(name: str) -> Rebuild:
        def run(upgraded: Upgraded) -> None:
            calls.append((name, [k.cls for k in upgraded.classes], list(upgraded.namespaces())))
            upgraded.txn.set(upgraded.classes[0].cls, "rebuilt", name)

        return Rebuild(name, run)

    monkeypatch.setattr("hotswap._libraries.REBUILDS", (record("sys"), record("a_library_nobody_imported")))
    txn = Transaction(owner=__name__)
    rebuild_derived([KeptClass(Shape, dict(vars(Shape)), Shape.__mro__)], txn, lambda: [namespace])

    assert calls == [("sys", [Shape], [namespace])] and Shape.rebuilt == "sys"  # type: ignore[attr-defined]
    assert "a_library_nobody_imported" not in sys.modules
    txn.rollback()
    assert not hasattr(Shape, "rebuilt")


def test_hotswap_imports_no_library_it_knows_how_to_rebuild(tmp_path):
    """Reloading a class in a process without pydantic leaves pydantic unimported."""
    (tmp_path / "plain.py").write_text("class A:\n    def f(self):\n        return 1\n")
    script = textwrap.dedent(f"""
        import sys, pathlib
        sys.path.insert(0, {str(tmp_path)!r})
        import hotswap
        reloader = hotswap.Reloader()
        reloader.start()
        reloader.mode = hotswap.Mode.ALL
        import plain
        pathlib.Path({str(tmp_path / "plain.py")!r}).write_text("class A:\\n    def g(self):\\n        return 2\\n")
        reloader.check()
        assert plain.A().g() == 2, "the reload did not happen"
        from hotswap._libraries import REBUILDS
        print(sorted(r.library for r in REBUILDS if r.library and r.library not in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['attr', 'pydantic']"  # never imported


def test_a_class_named_like_a_library_s_own_is_left_alone(story, cell):
    """A plain class holding pydantic's attribute names is not taken for a model."""
    import pydantic  # noqa: F401 - imported: its rebuild is consulted

    edit = story("class Model:\n    __pydantic_decorators__ = None\n    def f(self):\n        return 1\n")
    edit("class Model:\n    __pydantic_decorators__ = None\n    def g(self):\n        return 2\n")
    assert cell("m.Model().g(), m.Model.__pydantic_decorators__") == (2, None)


def test_a_model_using_another_as_a_field_type_validates_it_as_edited(shell, modules, cell):
    item, cart = modules.named("item"), modules.named("cart")
    modules.write(item, "from pydantic import BaseModel\n\n\nclass Item(BaseModel):\n    name: str\n")
    modules.write(cart, f"from pydantic import BaseModel\nfrom {item} import Item\n\n\nclass Cart(BaseModel):\n    items: list[Item]\n")
    cell("%autoreload 2")
    cell(f"import {cart} as c")
    modules.write(item, "from pydantic import BaseModel\n\n\nclass Item(BaseModel):\n    name: str\n    price: int = 5\n")

    assert cell("c.Cart(items=[{'name': 'x'}]).model_dump()") == {"items": [{"name": "x", "price": 5}]}


@pytest.mark.parametrize("kind", ["pydantic", "dataclass", "attrs"])
def test_a_subclass_made_elsewhere_takes_the_fields_its_base_gained(kind, shell, modules, cell, capsys):
    """dataclasses, pydantic and attrs copy a base's fields into a subclass when it is made: the
    subclasses the module's importers made, and those made in the session (said), are made again."""
    base, sub = modules.named("base"), modules.named("sub")
    first, second = RECORDS[kind]
    modules.write(base, first)
    modules.write(sub, f"{IMPORT[kind]}from {base} import Order\n\n\n{DECORATOR[kind]}class Rush(Order):\n    urgent: bool = True\n")
    cell("%autoreload 2")
    cell(f"import {sub} as s\n{IMPORT[kind]}from {base} import Order\n{DECORATOR[kind]}class Mine(Order):\n    pass")
    capsys.readouterr()
    modules.write(base, second)
    cell("pass")

    assert cell("rush = s.Rush(qty=1)\n(rush.qty, rush.note, rush.urgent)") == (1, "none", True)
    assert cell("isinstance(rush, s.Order), type(rush) is s.Rush") == (True, True)
    assert "class Mine (made in the session): made from Order before its fields changed" in capsys.readouterr().err


RECORDS = {
    "pydantic": ("from pydantic import BaseModel\n\n\nclass Order(BaseModel):\n    qty: int\n", None),
    "dataclass": ("import dataclasses\n\n\n@dataclasses.dataclass\nclass Order:\n    qty: int\n", None),
    "attrs": ("import attrs\n\n\n@attrs.define(slots=False)\nclass Order:\n    qty: int\n", None),
}
RECORDS = {kind: (text, text.replace("    qty: int\n", "    qty: int\n    note: str = 'none'\n")) for kind, (text, _) in RECORDS.items()}
DECORATOR = {"pydantic": "", "dataclass": "@dataclasses.dataclass\n", "attrs": "@attrs.define(slots=False)\n"}
IMPORT = {"pydantic": "", "dataclass": "import dataclasses\n", "attrs": "import attrs\n"}


# -- attrs ---------------------------------------------------------------------------

ATTRS = """
import attrs


def make():
    def meth(self):
        return 1

    return meth


@attrs.define(slots=False)
class Part:
    x: int
    meth = make()

    def total(self):
        return self.x
"""


def test_an_attrs_object_made_before_a_field_was_added_compares_and_shows_its_default(story, cell):
    edit = story(ATTRS)
    cell("old, twin = m.Part(1), m.Part(1)")
    edit(ATTRS.replace("    x: int\n", "    x: int\n    y: int = 3\n    z: list = attrs.Factory(list)\n"))

    assert cell("old == twin, repr(old), old == m.Part(1)") == (True, "Part(x=1, y=3, z=[])", True)
    assert cell("old.z is old.z, old.z is not twin.z") == (True, True)  # one list each, as fresh objects


def test_an_attrs_object_made_before_a_required_field_shows_it_missing(story, cell):
    edit = story(ATTRS)
    cell("old = m.Part(1)")
    edit(ATTRS.replace("    x: int\n", "    x: int\n    owner: str\n"))

    assert cell("repr(old)") == "Part(x=1, owner=<missing: this object was made before the field existed>)"
    assert cell("m.Part(1, 'me').owner") == "me"


def test_a_closure_an_attrs_class_body_stores_follows_its_maker_and_its_lines(story, cell):
    edit = story(ATTRS)
    cell("old = m.Part(1)")
    edit("# one line more\n" + ATTRS.replace("return 1", "return 2"))

    assert cell("old.meth(), m.Part.meth.__code__.co_firstlineno") == (2, 7)


def test_a_dataclass_object_made_before_a_field_was_added_reads_its_default_or_missing(story, cell):
    text = "import dataclasses\n\n\n@dataclasses.dataclass\nclass Point:\n    x: int\n"
    edit = story(text)
    cell("old = m.Point(1)")
    edit(text + "    tags: list = dataclasses.field(default_factory=list)\n    y: int = 0\n    z: int = dataclasses.field(default=5)\n")

    assert cell("repr(old), old.tags is old.tags") == ("Point(x=1, tags=[], y=0, z=5)", True)
    edit(text.replace("    x: int\n", "    x: int\n    label: str\n"))
    assert cell("repr(old)") == "Point(x=1, label=<missing: this object was made before the field existed>)"

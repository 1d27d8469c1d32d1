"""The reload fuzzer: edit sequences of small modules, run in a real IPython shell under
hotswap, checked after every cell against fresh imports in another interpreter.

Shared by ``tests/test_fuzz.py`` (a quick Hypothesis run in CI) and ``bench/fuzz.py``
(a long seeded run). The fingerprint itself lives in ``fuzz_oracle`` (one definition,
run both here and in the oracle worker process).

Pieces:

* **Grammar.** A module *version* is a complete text built from a random set of
  components (``CATALOGUE``): constants (some computed from others, in a loop, an ``if``, with
  ``del``), functions (with defaults reading constants; one renamed between versions, one
  turning into a constant), a lambda, a decorator and a function it decorates or not, an
  ``lru_cache`` function, a closure factory and a closure made at import, ``functools.partial``,
  classes with methods / properties (with a setter) / classmethods / staticmethods /
  ``cached_property`` / class attributes (one reading a constant) / a nested class, a subclass
  using zero-argument ``super()`` whose base changes, a module-level instance, a dataclass, an
  enum, a ``__slots__`` class, a NamedTuple, an exception class, an ``__init_subclass__``
  registry, a pydantic (v2) model (fields with defaults, a field validator, a model validator, a
  computed field, a method), an attrs slotted class (``@attrs.define``: fields, methods,
  zero-argument ``super()``), a ``@runtime_checkable`` ``typing.Protocol`` and a class checked
  against it (``isinstance`` read on old and new instances and on ``1``), statements with side
  effects, a ``globals()`` reader, ``from __future__ import annotations``, layout-only noise and
  shuffled definitions. Two or three modules: ``a`` does
  ``from b import K, helper`` (and maybe ``from b import EXTRA``, a name ``b`` may lack);
  ``c`` does ``from a import f, Point``, ``from b import K`` (maybe ``from b import *``).
* **Edits.** A *sequence* is the first version of each module, then steps; a
  step saves new versions of some modules (a small mutation of the last good
  version, a fresh random one, the last good one again, or a broken one: a
  syntax error, or an exception at import after some definitions), in place,
  atomically (rename over), keeping size and mtime, sometimes twice before the cell
  (only the last save counts), or deletes a file (restored at the next step).
  Per sequence: inotify or stat checks, ``--full`` or not, and sometimes the modules are
  imported (and names taken) before ``%load_ext hotswap``, with the first step saved before
  the load too. Sometimes the modules live in a package folder.
* **Life events** (``LIFE_EVENTS``, ``life`` percent of the steps after the first), each done for
  real on the files or the shell: a branch switch (every module rewritten at once) and back, with
  or without a cell on the other branch; stash (modules back to an earlier step's versions) and
  pop; the package folder renamed away and back (with or without a cell between), then saves in
  it; a module file replaced by a symlink to a file elsewhere holding the next version, that file
  edited at the next step; a save with bytes that are not UTF-8 (a failed save: the oracle's
  compile fails too), then a good one; ``%unload_ext``/``%load_ext``; ``%aimport -m``, saves,
  ``%aimport m``; a new shell (``clear_instance()``, ``instance()``, ``%load_ext hotswap``: the
  modules and the names taken are imported again, the objects held are kept by the harness).
  Enum members are often removed or added one at a time, so they come back by later saves, a
  switch back or a pop. Generation goes through a ``Chooser``: Hypothesis draws in
  the quick run (so failures shrink), a seeded ``random.Random`` in the long run.
* **Session.** ``Runner.run(sequence)``: ``%load_ext hotswap``, ``%autoreload 2``,
  import the modules and take every public name with ``from m import x as alias`` (again
  at some steps); after each step's cell keep instances, bound methods, closures and enum
  members made at that step in the user namespace. Any failed cell, internal error of
  hotswap or leftover ``__build_class__`` patch is a crash.
* **Oracle.** After each step's saves, the worker (``fuzz_oracle``) imports the files
  freshly (each module at its current text, or its last good text if the current one
  fails or is deleted), while the session runs its cell; the session's modules must give
  the same fingerprints; every old object must behave as the new one (``_check_held``);
  ``linecache`` must hold the text that runs.

Exclusions, each for a documented limit (README "Known limits" and "What is upgraded"), or
for what no reloader can do; by design of the grammar or of the checks:

* ``VALUE = compute()`` keeps its value when ``compute``'s body changes (documented): the
  grammar makes no top-level call of a function whose body can change, except a closure
  factory whose outer body never changes (``ADD3 = make_adder(3)``: only the inner function's
  code varies, which hotswap upgrades in closures), decorators applied at ``def`` time (only
  their inner ``wrapper`` varies), and ``ORIGIN = Point()`` (every ``__init__`` gives the same
  state).
* A closure whose captured variables changed keeps its old code (documented, reported): once
  the fresh import shows that a ``<locals>`` function's free variables changed, closures of that
  qualified name taken earlier by the user are no longer compared, nor is a module-level closure
  of that name for the rest of the sequence (``_State.flagged``).
* Side effects of deleted statements are not undone (documented): side effects go to private
  names (``_events``, ``_registry``, ``_plugins``), which fingerprints leave out
  (``stale_plugins()`` checks the registry holds the classes the module binds).
* ``cached_property`` values already cached on an instance stay cached (documented): those
  members are not compared on old instances (``without_cached_properties``).
* A class whose memory layout changed is replaced, old instances keep the old class
  (documented): CPython refuses ``Point3.__bases__`` changes between ``(Point,)`` and
  ``(object,)``, so old instances and bound methods of a class whose MRO changed are no longer
  compared (``_still_comparable``). Likewise a class whose ``__slots__`` changed (an attrs slotted
  class that gained or lost a field): hotswap says so and replaces it, old instances keep the old
  class and its code; they are compared no more, even once the slots come back.
* Old instances keep their own state (no reloader re-runs ``__init__``): every ``__init__``
  variant gives the same state; dataclass, attrs and pydantic field defaults are fixed by field
  name (a dataclass field added later is read from its class-level default; a pydantic object made
  before a field was added reads its default, in ``model_dump()`` too, as hotswap promises; no
  validator changes the state of ``Order()``); methods read only fields the version defines;
  old instances are compared on the members a fresh instance has (their extra attributes are
  their own state, e.g. a cached value of a removed ``cached_property``).
* A name removed from a module is removed; a later version that defines it again gives back
  the object it held (removal is a tombstone) where it was a function, a class, an enum member
  or a method of a class kept in place: a user's such object, an instance of such a class or a
  method taken from one, is not compared while the fresh import shows it gone, and compared
  again once a save brings it back. A plain value taken from a name that goes is compared no
  more (when the name comes back through a star import, the user's name that held the value
  does not follow). A method stops being compared once it changes kind or defining class (or
  comes back as another kind), an instance once its class changes kind (``Held``).
* A module imported before ``%load_ext hotswap`` and saved broken before the load runs a text
  hotswap never saw: its ``linecache`` is not checked until it runs a text hotswap read.
* A name taken with ``from m import`` in a shell since replaced, and removed from ``m`` then,
  cannot be taken again in the new shell: it is no longer compared.
* Threads: see ``KNOWN_LIMITS`` (a module seen half-way through a reload).

Known bugs (``KNOWN_BUGS``) and ``DOCUMENTED_LIMITS`` are avoided by the generator.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import importlib
import io
import itertools
import json
import linecache
import os
import random
import re
import select
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fuzz_oracle

ORACLE_PATH = str(Path(fuzz_oracle.__file__).resolve())

# -- choices: Hypothesis or a seeded random ------------------------------------------


class Chooser:
    """Where the generator's choices come from. Every choice shrinks towards 0 / False."""

    def integer(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def flag(self, percent: int) -> bool:
        """True about ``percent`` % of the time."""
        return self.integer(0, 99) >= 100 - percent

    def pick(self, items: Any) -> Any:
        return items[self.integer(0, len(items) - 1)]


class RandomChooser(Chooser):
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)


class DrawChooser(Chooser):
    """Choices drawn by Hypothesis (inside ``st.composite``), so failures shrink."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        from hypothesis import strategies as st

        self.draw = draw
        self.st = st

    def integer(self, lo: int, hi: int) -> int:
        return int(self.draw(self.st.integers(lo, hi)))


# -- known bugs --------------------------------------------------------------------------

# Divergences this fuzzer found that are hotswap bugs, each with a strict-xfail regression test
# in tests/test_fuzz_regressions.py (named here). While a bug is listed, the generator avoids
# exactly its pattern (a check ``if "its-name" in avoid`` in ``_avoiding``, or an entry in
# ``_AVOIDED_COMPONENTS``), so the fuzzer keeps finding other divergences. When one is fixed:
# remove its entry here, its avoidance, and the xfail marker there (the test stays, as a
# regression test). ``bench/fuzz.py --no-avoid`` generates the patterns anyway, to count them.
KNOWN_BUGS: dict[str, str] = {}  # none open
# Behaviour that differs from a fresh import by design, said to the user: avoided like the bugs.
DOCUMENTED_LIMITS: dict[str, str] = {
    # b drops EXTRA, which a imports by name: a keeps the old object and hotswap says so
    # ("b no longer defines EXTRA: a keeps the old object"); a fresh import of a raises ImportError.
    "removed-name-still-imported-silently": "reported, not re-imported",
    # A module saved between its import and %load_ext hotswap, with a version that fails: it
    # keeps running a text hotswap never read, so tracebacks show the file's (broken) text.
    "text-running-before-load-unknown": "said in the README (limits)",
}
ALL_KNOWN = frozenset(KNOWN_BUGS) | frozenset(DOCUMENTED_LIMITS)

# Divergences that are documented limits rather than bugs (not excluded from the sequences: no
# grammar element triggers them; they concern threads), each with the test that pins down
# exactly what may be seen (in tests/test_threads.py). The fuzzer's thread check allows them and
# fails on anything else. Remove an entry to make the corresponding check strict.
KNOWN_LIMITS: dict[str, str] = {
    # A thread already busy with Python code when a reload starts may get its turn in the middle
    # of it (after the 5 ms switch interval): it sees the statements before that point re-applied
    # and those after not yet, or, during a whole-module re-run, names missing. Documented
    # (README, "Other threads"). A thread that starts waiting during the reload sees it whole.
    "half-applied-module-visible-to-threads": "test_a_thread_busy_in_the_module_sees_statements_re_applied_in_their_order",
}
# Known bugs avoided by never generating one component (none at the moment).
_AVOIDED_COMPONENTS: dict[str, str] = {}


def _allowed(comp: Component, avoid: frozenset[str]) -> bool:
    return all(_AVOIDED_COMPONENTS[bug] != comp.name for bug in avoid if bug in _AVOIDED_COMPONENTS)


# -- the grammar ----------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """One piece of a module version; ``choices`` gives the range of each sub-choice."""

    name: str
    rank: int  # rendering order: 0 docstring, 1 __future__, 2 imports, 3 constants, 4 definitions (may be shuffled), 5+ after
    render: Callable[[tuple[int, ...], dict[str, str]], str]
    choices: tuple[int, ...] = (1,)
    percent: int | None = 50  # None: always present
    requires: tuple[str, ...] = ()
    needs: tuple[str, ...] | Callable[[tuple[int, ...]], tuple[str, ...]] = ()  # modules it uses (an `import x` line each)

    def needed(self, choice: tuple[int, ...]) -> tuple[str, ...]:
        return self.needs(choice) if callable(self.needs) else self.needs


def _fn(head: str, *body: str) -> str:
    return head + "\n" + "\n".join("    " + line for line in body)


def _doc(c: tuple[int, ...], n: dict[str, str]) -> str:
    return f'"""Fuzz module, docstring variant {c[0]}."""'


def _future(c: tuple[int, ...], n: dict[str, str]) -> str:
    return "from __future__ import annotations"


HELPER_BODIES = (
    ("return x + K",),
    ("return x * K",),
    ("return (x, K)",),
    ("if x > 2:", "    raise ValueError(x)", "return x - K"),
)


def _color(c: tuple[int, ...], n: dict[str, str]) -> str:
    mask, scheme, method = c
    values = ((1, 2, 3), ("'r'", "'g'", "'b'"), (10, 20, 30))[scheme]
    lines = ["class Color(enum.Enum):"]
    for bit, name in enumerate(("RED", "GREEN", "BLUE")):
        if (mask + 1) & (1 << bit):
            lines.append(f"    {name} = {values[bit]}")
    if method == 1:
        lines += ["", "    def label(self):", "        return self.name.lower()"]
    elif method == 2:
        lines += ["", "    def label(self):", "        return self.name + str(K)"]
    return "\n".join(lines)


def _point(c: tuple[int, ...], n: dict[str, str]) -> str:
    init, area, size, unit, scale, describe, meta, info = c
    # Every variant gives instances the same state: v == 2, as an instance attribute set by
    # __init__ or read from the class (old instances keep their own state: not a reload's job).
    lines = ["class Point:", "    v = 2"]
    lines += (
        ["", "    def __init__(self):", "        self.v = 2"],
        ["", "    def __init__(self):", "        self.v = 1 + 1"],
        ["", "    def __init__(self, v=2):", "        self.v = v"],
        [],  # no __init__: instances read the class attribute
    )[init]
    if area:
        lines += ["", "    def area(self):", ("        return self.v * K", "        return self.v + K + 1")[area - 1]]
    if size == 1:
        lines += ["", "    def size(self):", "        return 4"]
    elif size == 2:
        lines += ["", "    @property", "    def size(self):", "        return self.v * 2"]
    elif size == 3:
        lines += ["", "    size = 4"]
    elif size == 4:
        lines += ["", "    @classmethod", "    def size(cls):", "        return cls.__name__"]
    elif size == 5:
        lines += ["", "    @property", "    def size(self):", "        return self.v * 3"]
        lines += ["", "    @size.setter", "    def size(self, value):", "        self.v = value"]
    if unit:
        lines += ["", "    @staticmethod", "    def unit():", f"        return {unit}"]
    if scale:
        lines += ["", f"    SCALE = {('K', 1, 2)[scale - 1]}"]  # SCALE = K: the class statement reads K
    if describe == 1:
        lines += ["", "    def describe(self):", '        return f"{type(self).__name__}:{self.area()}"']
    elif describe == 2:
        lines += ["", "    def describe(self):", "        return [self.v, K]"]
    if meta:
        lines += ["", "    class Meta:", f"        tag = {meta}", "", "        def twice(self):", f"            return {meta} * 2"]
    if info:
        # Values already cached on an instance stay cached (documented): not compared on old instances.
        body = ("        return self.v * 10", "        return [self.v, K]")[info - 1]
        lines += ["", "    @functools.cached_property", "    def info(self):", body]
    return "\n".join(lines)


def _point3(c: tuple[int, ...], n: dict[str, str]) -> str:
    area, kind, base = c
    lines = [f"class Point3({('Point', 'object')[base]}):"]  # old instances follow a change of base
    if area:
        lines += ["    def area(self):", f"        return super().area() + {area}"]
    if kind:
        lines += ["", f"    kind = {'3d' if kind == 1 else 'solid'!r}"]
    if len(lines) == 1:
        lines.append("    pass")
    return "\n".join(lines)


REC_FIELDS = (("x", "int", "1"), ("y", "int", "2"), ("z", "str", "'z'"))  # defaults fixed by name


def _rec(c: tuple[int, ...], n: dict[str, str]) -> str:
    deco, mask, reverse, total = c
    fields = [f for bit, f in enumerate(REC_FIELDS) if (mask + 1) & (1 << bit)]
    if reverse:
        fields.reverse()
    head = ("@dataclasses.dataclass", "@dataclasses.dataclass(order=True)", "@dataclasses.dataclass(frozen=True)")[deco]
    lines = [head, "class Rec:"] + [f"    {name}: {kind} = {default}" for name, kind, default in fields]
    if total == 1:
        lines += ["", "    def total(self):", f"        return ({', '.join('self.' + f[0] for f in fields)},)"]
    elif total == 2:
        lines += ["", "    def total(self):", "        return len(dataclasses.fields(self))"]
    return "\n".join(lines)


def _registry(c: tuple[int, ...], n: dict[str, str]) -> str:
    return "\n".join(
        [
            "_registry = []",
            "",
            "",
            "def register(fn):",
            "    _registry.append(fn.__name__)",
            "    return fn",
            "",
            "",
            "@register",
            "def r(x):",
            f"    return x + {c[0] + 1}",
        ]
    )


def _plugins(c: tuple[int, ...], n: dict[str, str]) -> str:
    """An ``__init_subclass__`` registry: it must hold the classes the module binds (the kept ones)."""
    method, pb, kind = c
    lines = [
        "_plugins = {}",
        "",
        "",
        "class Plugin:",
        "    def __init_subclass__(cls, **kwargs):",
        "        super().__init_subclass__(**kwargs)",
        "        _plugins[cls.__name__] = cls",
    ]
    if method:
        lines += ["", "    def describe(self):", f"        return [type(self).__name__, {method}]"]
    lines += ["", "", "class PA(Plugin):", f"    kind = {kind}"]
    if pb:
        lines += ["", "", "class PB(Plugin):", f"    kind = {pb * 10}"]
    lines += [
        "",
        "",
        "def stale_plugins():",  # registered classes that are not what the module binds
        "    return sorted(name for name, cls in _plugins.items() if globals().get(name, cls) is not cls)",
    ]
    return "\n".join(lines)


def _pair(c: tuple[int, ...], n: dict[str, str]) -> str:
    body = ("        return self.x + self.y", "        return [self.x, self.y, K]")[c[0]]
    return "\n".join(
        [
            "class Pair:",
            '    __slots__ = ("x", "y")',
            "",
            "    def __init__(self):",
            "        self.x = 1",
            "        self.y = 2",
            "",
            "    def total(self):",
            body,
        ]
    )


def _pt(c: tuple[int, ...], n: dict[str, str]) -> str:
    lines = ["class Pt(typing.NamedTuple):", "    x: int = 1", "    y: int = 2"]
    lines += ["", "    def norm(self):", ("        return self.x * self.x + self.y * self.y", "        return (self.x, K)")[c[0]]]
    if c[1]:
        lines += ["", "    @property", "    def flipped(self):", "        return (self.y, self.x)"]
    return "\n".join(lines)


# The third-party classes (issue #23), in role "a": a pydantic v2 model, an attrs slotted class, a
# runtime-checkable typing.Protocol and a class checked against it. Their modules are imported
# like the standard library's (``needs``: an ``import pydantic`` / ``import attrs`` line).
ORDER_FIELDS = (("note", "str", "'n'"), ("size", "int", "3"))  # qty: int = 1 always (the validators name it)


def _order(c: tuple[int, ...], n: dict[str, str]) -> str:
    """A pydantic model: fields with defaults fixed by name, a field validator whose body varies, and
    maybe a model validator, a computed field and a plain method. ``Order()`` is the same object in
    every variant (a field validator does not run on defaults; no model validator changes qty=1)."""
    mask, mode, check, settle, double, label = c
    lines = ["class Order(pydantic.BaseModel):", "    qty: int = 1"]
    lines += [f"    {name}: {kind} = {default}" for bit, (name, kind, default) in enumerate(ORDER_FIELDS) if mask & (1 << bit)]
    validator = ('    @pydantic.field_validator("qty", mode="before")', '    @pydantic.field_validator("qty")')[mode]
    lines += ["", validator, "    @classmethod", "    def check(cls, value):"]
    lines.append(("        return value + K", "        return value * 2", "        return value")[check])
    if settle:
        lines += ["", '    @pydantic.model_validator(mode="after")', "    def settle(self):"]
        lines += (
            ["        if self.qty > 9:", '            raise ValueError("too big")'],
            ["        self.qty = min(self.qty, 8)"],
        )[settle - 1]
        lines.append("        return self")
    if double:
        lines += ["", "    @pydantic.computed_field", "    @property", "    def double(self) -> int:"]
        lines.append(("        return self.qty * 2", "        return self.qty + K")[double - 1])
    if label:
        lines += ["", "    def label(self):", ('        return f"{self.qty}"', "        return [self.qty, K]")[label - 1]]
    return "\n".join(lines)


SLOT_FIELDS = (("x", "int", "1"), ("y", "int", "2"), ("z", "str", "'z'"))  # defaults fixed by name


def _slot(c: tuple[int, ...], n: dict[str, str]) -> str:
    """An attrs slotted class (``@attrs.define`` makes a new class with ``__slots__``): a field added or
    removed changes its layout, so the class is replaced and old instances keep theirs (documented)."""
    deco, mask, total, text = c
    fields = [f for bit, f in enumerate(SLOT_FIELDS) if (mask + 1) & (1 << bit)]
    lines = [("@attrs.define", "@attrs.define(order=True)", "@attrs.frozen")[deco], "class Slot:"]
    lines += [f"    {name}: {kind} = {default}" for name, kind, default in fields]
    if total == 1:
        lines += ["", "    def total(self):", f"        return ({', '.join('self.' + f[0] for f in fields)},)"]
    elif total == 2:
        lines += ["", "    def total(self):", "        return len(attrs.fields(type(self))) + K"]
    if text:  # zero-argument super(): the __class__ cell attrs sets on the slotted class it makes
        lines += ["", "    def text(self):", "        return super().__str__()"]
    return "\n".join(lines)


def _closable(c: tuple[int, ...], n: dict[str, str]) -> str:
    """A runtime-checkable protocol whose members vary, and a class whose methods vary: ``isinstance``
    is read through ``File().closable()`` (on old instances too) and ``is_closable(1)``."""
    members, close, flush, mode = c
    lines = ["@typing.runtime_checkable", "class Closable(typing.Protocol):", "    def close(self): ..."]
    lines += ([], ["", "    def flush(self): ..."], ["", "    mode: str"])[members]
    lines += ["", "", "class File:"]
    if close:
        lines += ["    def close(self):", f"        return {close}", ""]
    if flush:
        lines += ["    def flush(self):", "        return None", ""]
    if mode:
        lines += ['    mode = "r"', ""]
    lines += ["    def closable(self):", "        return isinstance(self, Closable)"]
    lines += ["", "", "def is_closable(x):", "    return isinstance(x, Closable)"]
    return "\n".join(lines)


def _child(c: tuple[int, ...], n: dict[str, str]) -> str:
    area, extra = c
    lines = ["class Child(Point):"]
    if area:
        lines += ["    def area(self):", ("        return super().area() * 2", "        return [super().area()]")[area - 1]]
    if extra:
        lines += ["", "    def extra(self):", ("        return self.v + K", "        return f(self.v)")[extra - 1]]
    if len(lines) == 1:
        lines.append("    pass")
    return "\n".join(lines)


def _make_adder(c: tuple[int, ...], n: dict[str, str]) -> str:
    inner = ("return x + n", "return x * n", "return x + n + k", "return (x, n, K)")[c[0]]
    return _fn("def make_adder(n, k=1):", "def add(x):", "    " + inner, "return add")


def _tagged(c: tuple[int, ...], n: dict[str, str]) -> str:
    inner = ('return ["t", fn(*args)]', 'return ("t2", fn(*args))')[c[0]]
    return _fn("def tagged(fn):", "@functools.wraps(fn)", "def wrapper(*args):", "    " + inner, "return wrapper")


COMMON = [
    Component("doc", 0, _doc, (3,), 30),
    Component("future", 1, _future, (1,), 8),
]

CATALOGUE: dict[str, list[Component]] = {
    "b": COMMON
    + [
        Component("K", 3, lambda c, n: f"K = {c[0] + 1}", (3,), None),
        Component("K2", 3, lambda c, n: ("K2 = K * 2", "K2 = K + 10")[c[0]], (2,), 40, ("K",)),
        Component("helper", 4, lambda c, n: _fn("def helper(x):", *HELPER_BODIES[c[0]]), (4,), None),
        Component(  # variant 2: the name becomes a constant (a function <-> value change of kind)
            "twice",
            4,
            lambda c, n: (
                _fn("def twice(x):", "return helper(x) * 2"),
                _fn("def twice(x):", "return [helper(x), helper(x + 1)]"),
                "twice = 2",
            )[c[0]],
            (3,),
        ),
        Component("EXTRA", 3, lambda c, n: f"EXTRA = {c[0] + 7}", (2,), 50),
        Component("square", 3, lambda c, n: ("square = lambda x: x * x + K", "square = lambda x: -x")[c[0]], (2,), 30),
        Component("AppError", 4, lambda c, n: f"class AppError(ValueError):\n    code = {c[0] + 1}", (2,), 25),
        Component("DOUBLE", 5, lambda c, n: f"_tmp = K * {c[0] + 2}\nDOUBLE = _tmp + 1\ndel _tmp", (2,), 20),
        # bound again later: re-running the first binding can give back the object it ended with
        Component("ACC", 5, lambda c, n: ("ACC = K\nACC += 1", "ACC = K + 1\nACC = ACC * 2")[c[0]], (2,), 25, ("K",)),
        Component(  # renamed between versions: util_a <-> util_b
            "util", 4, lambda c, n: _fn(f"def util_{'ab'[c[0]]}(x):", ("return x - 1", "return -x")[c[1]]), (2, 2), 40
        ),
        Component("Color", 4, _color, (7, 3, 3), 40, needs=("enum",)),
        Component("TABLE", 5, lambda c, n: f"TABLE = {{i: i * K for i in range({c[0] + 2})}}", (2,), 30),
        Component("LOOP", 5, lambda c, n: _fn(f"for _i in range({c[0] + 2}):", "LAST = _i * K"), (2,), 25),
        Component("events", 5, lambda c, n: f"_events = []\n_events.append('loaded {c[0]}')", (2,), 25),
        Component("NAMES", 9, lambda c, n: "NAMES = sorted(n for n in globals() if n.isupper())", (1,), 15),
        # What `from b import *` takes: only the listed names (always defined ones: a missing one fails the import).
        Component("all", 3, lambda c, n: ('__all__ = ["K", "helper"]', '__all__ = ["helper"]')[c[0]], (2,), 15),
    ],
    "a": COMMON
    + [
        Component(
            "import_b", 2, lambda c, n: (f"from {n['b']} import K, helper", f"from {n['b']} import helper, K")[c[0]], (2,), None
        ),
        Component("import_bmod", 2, lambda c, n: f"import {n['b']} as bmod", (1,), 30),
        # An optional name of b: b may remove it while a imports it, a may import it before b has it.
        Component("import_extra", 2, lambda c, n: f"from {n['b']} import EXTRA", (1,), 15),
        Component("MODE", 5, lambda c, n: _fn("if K > 1:", f"MODE = 'big{c[0]}'") + "\nelse:\n    MODE = 'small'", (2,), 30),
        Component("LIMIT", 3, lambda c, n: ("LIMIT = K * 2", "LIMIT = K + 100")[c[0]], (2,), 50),
        Component("STEP", 5, lambda c, n: ("STEP = K\nSTEP += 1", "STEP = K\nSTEP = STEP - 1")[c[0]], (2,), 25, ("import_b",)),
        Component(
            "f",
            4,
            lambda c, n: (
                _fn("def f(x):", "return helper(x) + 1"),
                _fn("def f(x):", "return [helper(x), K]"),
                _fn("def f(x):", "return helper(x) * 2"),
                _fn("def f(x, y=1):", "return (helper(x), y)"),
            )[c[0]],
            (4,),
            None,
        ),
        Component(
            "g",
            4,
            lambda c, n: (
                _fn("def g(x, y=2):", "return x * y + K"),
                _fn("def g(x, y=3):", "return x * y + K"),
                _fn("def g(x, *, y=2):", "return x - y"),
                _fn("def g(x, y=K):", "return x + y"),  # a default that reads a constant
            )[c[0]],
            (4,),
        ),
        Component("live_k", 4, lambda c, n: _fn("def live_k():", ("return bmod.K", "return [bmod.K]")[c[0]]), (2,), 50, ("import_bmod",)),
        Component("tagged", 4, _tagged, (2,), 40, needs=("functools",)),
        Component(  # decorated or not: the decorator added or removed between versions
            "h",
            5,
            lambda c, n: ("@tagged\n", "")[c[1]] + _fn("def h(x):", ("return x + K", "return helper(x)", "return -x")[c[0]]),
            (3, 2),
            70,
            ("tagged",),
        ),
        Component(
            "cached",
            4,
            lambda c, n: "@functools.lru_cache(maxsize=None)\n" + _fn("def cached(x):", ("return x * 3 + K", "return x * 4")[c[0]]),
            (2,),
            30,
            needs=("functools",),
        ),
        Component("make_adder", 4, _make_adder, (4,), 40),
        Component("ADD3", 5, lambda c, n: "ADD3 = make_adder(3)", (1,), 60, ("make_adder",)),
        Component("Point", 4, _point, (4, 3, 6, 3, 4, 3, 3, 3), None, needs=lambda c: ("functools",) if c[7] else ()),
        Component("Point3", 5, _point3, (3, 3, 2), 40, ("Point",)),
        Component("ORIGIN", 6, lambda c, n: "ORIGIN = Point()", (1,), 30, ("Point",)),
        Component("add_one", 5, lambda c, n: "add_one = functools.partial(f, 1)", (1,), 20, needs=("functools",)),
        Component("tag", 6, lambda c, n: ("Point.tag = 5", "Point.tag = K")[c[0]], (2,), 20, ("Point",)),
        Component("Rec", 4, _rec, (3, 7, 2, 3), 40, needs=("dataclasses",)),
        Component("registry", 4, _registry, (2,), 20),
        Component("Plugin", 4, _plugins, (2, 3, 2), 25),
        Component("Pair", 4, _pair, (2,), 20),
        Component("Pt", 4, _pt, (2, 2), 20, needs=("typing",)),
        Component("Order", 4, _order, (4, 2, 3, 3, 3, 3), 15, needs=("pydantic",)),
        Component("Slot", 4, _slot, (3, 7, 3, 2), 15, needs=("attrs",)),
        Component("Closable", 4, _closable, (3, 3, 2, 2), 15, needs=("typing",)),
    ],
    "c": COMMON
    + [
        Component("import_a", 2, lambda c, n: f"from {n['a']} import f, Point", (1,), None),
        Component("import_b", 2, lambda c, n: f"from {n['b']} import K", (1,), None),
        Component("import_amod", 2, lambda c, n: f"import {n['a']} as amod", (1,), 40),
        # A default that `from b import *` replaces when b has the name (b's twice comes and goes).
        Component("default", 2, lambda c, n: f"twice = {('None', '0')[c[0]]}", (2,), 30),
        Component("star", 2, lambda c, n: f"from {n['b']} import *", (1,), 25),
        # A name of b shadowed after `from b import *`: c's own value wins (4 and 12: sometimes the very
        # object b.K2 is, 5 and 20: never).
        Component("shadow", 3, lambda c, n: f"K2 = {(4, 12, 5, 20)[c[0]]}", (4,), 40, ("star",)),
        Component("use", 4, lambda c, n: _fn("def use(x):", ("return f(x)", "return [f(x), K]", "return f(x + K)")[c[0]]), (3,), None),
        Component("live", 4, lambda c, n: _fn("def live():", ("return amod.f(2)", "return amod.Point().v")[c[0]]), (2,), 60, ("import_amod",)),
        Component("Child", 4, _child, (3, 3), 60),
        Component("Y", 3, lambda c, n: ("Y = K + 1", "Y = K * K")[c[0]], (2,), 50),
    ],
}
ROLES = ("b", "a", "c")  # dependency order: a imports b; c imports a and b

# Broken versions: a syntax error, or an exception at import (placed after some definitions).
BREAKS: dict[str, tuple[str, ...]] = {
    "syntax": ("def broken(:\n    pass", "X = (1,", "class Broken\n    pass", "return 5"),
    "raise": ('raise RuntimeError("boom")', "_boom = 1 / 0", "BAD = undefined_name", "Point.nothing.x = 1", "IMPORTED"),
}


@dataclass(frozen=True)
class Version:
    """One complete text of one module: which components, in which order and layout, broken or not."""

    role: str
    parts: tuple[tuple[str, tuple[int, ...]], ...]
    order: int = 0  # 0: catalogue order; else the seed that shuffles the definitions
    layout: int = 0  # comments and blank lines only
    broken: tuple[str, int, int] | None = None  # (kind, which, position)

    def render(self, names: dict[str, str]) -> str:
        present = dict(self.parts)
        comps = [c for c in CATALOGUE[self.role] if c.name in present]
        chunks: list[tuple[int, str]] = [(c.rank, c.render(present[c.name], names)) for c in comps]
        needs = sorted({need for c in comps for need in c.needed(present[c.name])})
        if needs:
            chunks.append((2, "\n".join(f"import {need}" for need in needs)))
        chunks.sort(key=lambda chunk: chunk[0])
        if self.order:
            movable = [text for rank, text in chunks if rank == 4]
            random.Random(self.order).shuffle(movable)
            shuffled = iter(movable)
            chunks = [(rank, next(shuffled) if rank == 4 else text) for rank, text in chunks]
        texts = [text for _, text in chunks]
        if self.broken is not None:
            kind, which, position = self.broken
            first = sum(1 for rank, _ in chunks if rank <= 1)  # docstring and __future__ stay first
            where = first + position % (len(texts) - first + 1)
            bad = BREAKS[kind][which % len(BREAKS[kind])]
            if bad == "IMPORTED":
                bad = f"from {names['b']} import NOT_THERE" if self.role != "b" else "import nowhere_to_be_found_xyz"
            texts.insert(where, bad)
        separator = ("\n\n\n", "\n\n\n# -- section --\n", "\n\n\n\n\n", "\n\n\n# -- section --\n\n\n")[self.layout]
        return separator.join(texts) + "\n"

    def describe(self) -> str:
        parts = " ".join(f"{name}{''.join(map(str, c))}" for name, c in self.parts)
        extra = f" order={self.order}" if self.order else ""
        extra += f" layout={self.layout}" if self.layout else ""
        extra += f" BROKEN={self.broken}" if self.broken else ""
        return f"{self.role}[{parts}{extra}]"


def _normalized(role: str, parts: dict[str, tuple[int, ...]]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Catalogue order, and no component without the components it requires."""
    out: list[tuple[str, tuple[int, ...]]] = []
    for comp in CATALOGUE[role]:
        if comp.name in parts and all(r in parts for r in comp.requires):
            out.append((comp.name, parts[comp.name]))
        elif comp.name in parts:
            del parts[comp.name]
    return tuple(out)


def random_version(ch: Chooser, role: str, avoid: frozenset[str] = ALL_KNOWN) -> Version:
    parts: dict[str, tuple[int, ...]] = {}
    for comp in CATALOGUE[role]:
        if comp.percent is not None and not ch.flag(comp.percent):
            continue
        if all(r in parts for r in comp.requires) and _allowed(comp, avoid):
            parts[comp.name] = tuple(ch.integer(0, n - 1) for n in comp.choices)
    order = ch.integer(1, 10_000) if ch.flag(25) else 0
    layout = ch.integer(1, 3) if ch.flag(15) else 0
    return Version(role, _normalized(role, parts), order, layout)


def mutate(ch: Chooser, version: Version, avoid: frozenset[str] = ALL_KNOWN) -> Version:
    """One or two small edits: a component added, removed, or one of its choices changed."""
    role = version.role
    parts = dict(version.parts)
    order, layout = version.order, version.layout
    for _ in range(1 + ch.flag(30)):
        what = ch.integer(0, 9)
        if what == 9:  # layout or order only
            if ch.flag(50):
                layout = ch.integer(0, 3)
            else:
                order = ch.integer(0, 10_000)
            continue
        comp = ch.pick(CATALOGUE[role])
        if comp.name == "Color" and comp.name in parts and ch.flag(60):
            # an enum member removed or added (a later save, a switch back or a pop, may bring it back)
            mask, *rest = parts[comp.name]
            flipped = (mask + 1) ^ (1 << ch.integer(0, 2))
            parts[comp.name] = (flipped - 1 if flipped else mask, *rest)
        elif comp.name in parts:
            if comp.percent is not None and ch.flag(30):
                del parts[comp.name]
            else:
                index = ch.integer(0, len(comp.choices) - 1)
                choice = list(parts[comp.name])
                choice[index] = ch.integer(0, comp.choices[index] - 1)
                parts[comp.name] = tuple(choice)
        elif all(r in parts for r in comp.requires) and _allowed(comp, avoid):
            parts[comp.name] = tuple(ch.integer(0, n - 1) for n in comp.choices)
    return Version(role, _normalized(role, parts), order, layout)


def next_version(ch: Chooser, good: Version, avoid: frozenset[str] = ALL_KNOWN) -> Version:
    """The next save of a module whose last good version is ``good``."""
    how = ch.integer(0, 99)
    if how < 68:
        return mutate(ch, good, avoid)
    if how < 78:
        return random_version(ch, good.role, avoid)
    if how < 86:
        return good  # saved again unchanged (or back to the last good text after a broken one)
    base = mutate(ch, good, avoid) if ch.flag(50) else good
    kind = "syntax" if ch.flag(40) else "raise"
    return dataclasses.replace(base, broken=(kind, ch.integer(0, 9), ch.integer(0, 30)))


SAVE_MODES = ("write", "atomic", "keep_stat")
BAD_BYTES = "bad_bytes"  # a save mode: the version's text with a byte that is not UTF-8 (a failed save)
# A working tree's life, one step (or two: the second brings things back). Each is done for real on
# the files or the shell: "switch" (several modules rewritten at once to another branch's versions,
# back at the next step, or both in one step: "switch_back"), "stash" (modules back to an earlier
# step's versions, "pop" at the next step), "bad_bytes" (then a good save), "link" (the module
# becomes a symlink to a file elsewhere holding the next version; the target is edited at the next
# step), "reload_ext" (%unload_ext, %load_ext, %autoreload before the saves), "exclude"
# (%aimport -m, the saves, %aimport m), "new_shell" (a new InteractiveShell takes over).
LIFE_PERCENT = 15  # the steps that are a life event (after the first step), in percent
# With a package: "move" (its folder renamed away; back at the next step, then saves), "move_back"
# (away and back before one cell, then saves).
FOLDER_EVENTS = ("move", "move_back")
LIFE_EVENTS = ("switch", "switch_back", "stash", "bad_bytes", "link", "reload_ext", "exclude", "new_shell")


@dataclass(frozen=True)
class Action:
    role: str
    kind: str  # "write", "delete" or "link" (the file becomes a symlink to a new file holding ``version``)
    version: Version | None = None
    mode: str = "write"  # write (in place), atomic (rename over), keep_stat (same size and mtime), bad_bytes
    first: Version | None = None  # saved just before ``version``, in the same way: only the last counts


@dataclass(frozen=True)
class Step:
    actions: tuple[Action, ...]
    imports: bool  # the step's cell takes every public name with `from m import x as alias`
    event: str = ""  # a life event (LIFE_EVENTS), or its second half ("back", "pop", "edit_target", "recover")
    target: str = ""  # the role an "exclude" event excludes


@dataclass(frozen=True)
class Sequence:
    roles: tuple[str, ...]
    initial: tuple[Version, ...]
    steps: tuple[Step, ...]
    events: bool = True  # False: hotswap finds changes with stat checks (c.Hotswap.events = False)
    full: bool = False  # %autoreload 2 --full
    fixed_size: bool = False  # every text of a module padded to one size, so keep_stat saves can be used
    adopt: bool = False  # imported before %load_ext hotswap; step 1 saved before it too
    package: bool = False  # the modules are in a package folder (which "move" events move away and back)

    def __repr__(self) -> str:
        flags = f"events={self.events}, full={self.full}, fixed_size={self.fixed_size}, adopt={self.adopt}"
        flags += ", package=True" if self.package else ""
        lines = [f"Sequence(roles={self.roles}, {flags})"]
        lines += [f"  initial {v.describe()}" for v in self.initial]
        for i, step in enumerate(self.steps, 1):
            actions = ", ".join(
                f"{a.role} deleted"
                if a.kind == "delete"
                else (f"{a.first.describe()} then " if a.first else "")
                + f"{a.version.describe()} ({a.mode}{', symlinked' if a.kind == 'link' else ''})"  # type: ignore[union-attr]
                for a in step.actions
            )
            event = f" [{step.event}{' ' + step.target if step.target else ''}]" if step.event else ""
            lines.append(f"  step {i}{event}: {actions or 'no save'}{' + from-imports' if step.imports else ''}")
        return "\n".join(lines)


def _avoiding(
    version: Version,
    good: dict[str, Version],
    avoid: frozenset[str],
    before_load: dict[str, Version] | None = None,
) -> Version:
    """The next save of a module, changed so that it cannot show a known bug or limit being avoided.

    ``good``: the last good versions, this step's saves of its dependencies included (saved in
    dependency order). ``before_load``: the save happens before ``%load_ext hotswap``, after the
    import of these versions.
    """
    role, parts = version.role, dict(version.parts)
    has_extra = "EXTRA" in dict(good["b"].parts)  # good["b"]: the b that runs (b imports nothing)
    if role == "b" and "removed-name-still-imported-silently" in avoid and has_extra and "EXTRA" not in parts:
        parts["EXTRA"] = dict(good["b"].parts)["EXTRA"]  # once b has EXTRA, it keeps it
        version = dataclasses.replace(version, parts=_normalized("b", parts))
    if before_load is not None and "text-running-before-load-unknown" in avoid:
        # Saved between the import and the load, a version that fails leaves the module running
        # a text hotswap never saw: it cannot show it (linecache holds the file's).
        if version.broken:
            version = dataclasses.replace(version, broken=None)
        if "import_extra" in parts and not has_extra:
            del parts["import_extra"]
            version = dataclasses.replace(version, parts=_normalized(role, parts))
    return version


def generate_sequence(
    ch: Chooser, max_steps: int = 6, avoid: frozenset[str] = ALL_KNOWN, life: int = LIFE_PERCENT
) -> Sequence:
    """``life``: the percentage of steps (after the first) that are a life event (``LIFE_EVENTS``)."""
    roles = ("b", "a", "c") if ch.flag(35) else ("b", "a")
    events = not ch.flag(20)
    full = ch.flag(10)
    fixed_size = ch.flag(30)
    package = ch.flag(25)
    adopt = ch.flag(15)
    initial = tuple(random_version(ch, role, avoid) for role in roles)
    if "import_extra" in dict(initial[1].parts) and "EXTRA" not in dict(initial[0].parts):
        parts = dict(initial[0].parts)
        parts["EXTRA"] = (0,)
        initial = (Version("b", _normalized("b", parts), initial[0].order, initial[0].layout), *initial[1:])
    good = dict(zip(roles, initial))
    history = [dict(good)]  # the good versions after each step
    deleted: set[str] = set()
    steps: list[Step] = []
    follow: Callable[[], Step] | None = None  # the second half of a life event
    for number in range(1, ch.integer(1, max_steps) + 1):
        if follow is not None:
            step, follow = follow(), None
        elif number > 1 and not deleted and life and ch.flag(life):
            event = ch.pick(LIFE_EVENTS + (FOLDER_EVENTS if package else ()))
            step, follow = _life_event(ch, event, roles, good, history, avoid)
        else:
            step = _edit_step(ch, roles, good, deleted, avoid, adopt and number == 1, initial, fixed_size)
        steps.append(step)
        history.append(dict(good))
    return Sequence(roles, initial, tuple(steps), events, full, fixed_size, adopt, package)



def _edit_step(
    ch: Chooser,
    roles: tuple[str, ...],
    good: dict[str, Version],
    deleted: set[str],
    avoid: frozenset[str],
    before_load: bool,
    initial: tuple[Version, ...],
    fixed_size: bool,
) -> Step:
    """An ordinary step: some modules saved (or deleted, restored at the next step)."""
    actions: list[Action] = []
    loaded = dict(zip(roles, initial)) if before_load else None
    for role in roles:  # dependencies first
        if role in deleted:  # delete, then restore at the next step
            deleted.discard(role)
            version = next_version(ch, good[role], avoid)
            mode = "write"
        elif ch.flag(45):
            if ch.flag(6) and not before_load:  # a file missing at load is not adopted
                deleted.add(role)
                actions.append(Action(role, "delete"))
                continue
            version = next_version(ch, good[role], avoid)
            mode = ch.pick(SAVE_MODES if fixed_size else SAVE_MODES[:2])
        else:
            continue
        version = _avoiding(version, good, avoid, loaded)
        first = random_version(ch, role, avoid) if ch.flag(8) else None
        actions.append(Action(role, "write", version, mode, first))
        if version.broken is None:
            good[role] = version
    if not actions and not ch.flag(10):
        role = ch.pick(roles)
        version = _avoiding(next_version(ch, good[role], avoid), good, avoid, loaded)
        actions.append(Action(role, "write", version, "write"))
        if version.broken is None:
            good[role] = version
    return Step(tuple(actions), imports=ch.flag(20))


def _saves(versions: dict[str, Version], good: dict[str, Version], avoid: frozenset[str], mode: str = "atomic") -> tuple[Action, ...]:
    """Every module of ``versions`` saved (dependencies first, as ``versions`` is ordered)."""
    actions = []
    for role, version in versions.items():
        version = _avoiding(version, good, avoid)
        actions.append(Action(role, "write", version, mode))
        if version.broken is None:
            good[role] = version
    return tuple(actions)


def _life_event(
    ch: Chooser,
    event: str,
    roles: tuple[str, ...],
    good: dict[str, Version],
    history: list[dict[str, Version]],
    avoid: frozenset[str],
) -> tuple[Step, Callable[[], Step] | None]:
    """The first step of a life event, and what makes its second step (None: one step)."""
    imports = ch.flag(20)
    if event in ("switch", "switch_back"):  # every module (two or three) rewritten at once, and back
        back = dict(good)
        other = {role: next_version(ch, good[role], avoid) for role in roles}
        if event == "switch_back":  # no cell on the other branch: only the last save counts
            firsts = _saves(other, dict(good), avoid)
            actions = _saves(back, good, avoid)
            both = tuple(dataclasses.replace(a, first=f.version) for a, f in zip(actions, firsts))
            return Step(both, imports, event), None
        return Step(_saves(other, good, avoid), imports, event), lambda: Step(_saves(back, good, avoid), ch.flag(20), "back")
    if event == "stash":  # back to an earlier step's versions, then forward again
        earlier = history[ch.integer(0, len(history) - 1)]
        now = dict(good)
        changed = {role: earlier[role] for role in roles if earlier[role] != good[role]} or {roles[0]: earlier[roles[0]]}
        step = Step(_saves(changed, good, avoid, "write"), imports, event)
        return step, lambda: Step(_saves({r: now[r] for r in changed}, good, avoid, "write"), ch.flag(20), "pop")
    if event in FOLDER_EVENTS:
        def restore() -> Step:
            saved = {r: next_version(ch, good[r], avoid) for r in roles if ch.flag(50)}
            return Step(_saves(saved, good, avoid, ch.pick(SAVE_MODES[:2])), ch.flag(20), "restore")

        if event == "move":
            return Step((), imports, event), restore
        return dataclasses.replace(restore(), imports=imports, event=event), None
    role = ch.pick(roles)
    version = _avoiding(mutate(ch, good[role], avoid), good, avoid)
    if event == "bad_bytes":  # a failed save; the next save of the module is a good one
        step = Step((Action(role, "write", version, BAD_BYTES),), imports, event)
        return step, lambda: Step(_saves({role: mutate(ch, good[role], avoid)}, good, avoid, "write"), ch.flag(20), "recover")
    if event == "link":  # the file becomes a symlink to a file elsewhere; that file is edited next
        good[role] = version
        step = Step((Action(role, "link", version),), imports, event)
        return step, lambda: Step(_saves({role: mutate(ch, good[role], avoid)}, good, avoid, "write"), ch.flag(20), "edit_target")
    saved = {r: next_version(ch, good[r], avoid) for r in roles if r == role or ch.flag(40)}
    return Step(_saves(saved, good, avoid, ch.pick(SAVE_MODES[:2])), imports, event, role if event == "exclude" else ""), None


def sequences(max_steps: int = 6, avoid: frozenset[str] = ALL_KNOWN) -> Any:
    """The Hypothesis strategy of edit sequences."""
    from hypothesis import strategies as st

    @st.composite
    def strategy(draw: Any) -> Sequence:
        return generate_sequence(DrawChooser(draw), max_steps, avoid)

    return strategy()


# -- shrinking: a smaller sequence that still fails the same way --------------------------


def signature(problem: str) -> str:
    """A divergence or crash, without what changes from run to run (names, numbers): for grouping."""
    first = problem.splitlines()[0] if problem else ""
    first = re.sub(r"fz_[0-9a-f]+_\d+_", "", first)
    first = re.sub(r"\b[hi]\d+_", "h_", first)
    first = re.sub(r"step \d+", "step N", first)
    first = re.sub(r"taken at step N", "", first)
    first = re.sub(r"\d+", "#", first)
    return first[:160]


def _with_versions(sequence: Sequence, change: Callable[[Version], Version | None]) -> Sequence:
    """Every version of the sequence through ``change`` (None: that save is dropped)."""
    initial = tuple(change(v) or v for v in sequence.initial)
    steps = []
    for step in sequence.steps:
        actions = []
        for action in step.actions:
            if action.kind == "delete":
                actions.append(action)
                continue
            version = change(action.version)  # type: ignore[arg-type]
            if version is None:
                continue
            first = change(action.first) if action.first is not None else None
            actions.append(dataclasses.replace(action, version=version, first=first))
        steps.append(dataclasses.replace(step, actions=tuple(actions)))
    return dataclasses.replace(sequence, initial=initial, steps=tuple(steps))


def _smaller(sequence: Sequence) -> Iterable[Sequence]:
    """Candidates one edit smaller than ``sequence``, the biggest cuts first."""
    steps = sequence.steps
    for keep in range(1, len(steps)):
        yield dataclasses.replace(sequence, steps=steps[:keep])
    for i in range(len(steps)):
        if len(steps) > 1:
            yield dataclasses.replace(sequence, steps=steps[:i] + steps[i + 1 :])
    if "c" in sequence.roles:
        without_c = dataclasses.replace(
            sequence,
            roles=("b", "a"),
            initial=tuple(v for v in sequence.initial if v.role != "c"),
            steps=tuple(dataclasses.replace(s, actions=tuple(a for a in s.actions if a.role != "c")) for s in steps),
        )
        yield without_c
    for flag, plain in (("adopt", False), ("full", False), ("events", True), ("fixed_size", False)):
        if getattr(sequence, flag) != plain:
            yield dataclasses.replace(sequence, **{flag: plain})
    for i, step in enumerate(steps):
        smaller_steps = [dataclasses.replace(step, imports=False)] if step.imports else []
        for j, action in enumerate(step.actions):
            smaller_steps.append(dataclasses.replace(step, actions=step.actions[:j] + step.actions[j + 1 :]))
            if action.first is not None:
                actions = list(step.actions)
                actions[j] = dataclasses.replace(action, first=None)
                smaller_steps.append(dataclasses.replace(step, actions=tuple(actions)))
            if action.mode != "write":
                actions = list(step.actions)
                actions[j] = dataclasses.replace(action, mode="write")
                smaller_steps.append(dataclasses.replace(step, actions=tuple(actions)))
        for smaller in smaller_steps:
            yield dataclasses.replace(sequence, steps=steps[:i] + (smaller,) + steps[i + 1 :])
    saved = (v for s in steps for a in s.actions for v in (a.first, a.version) if v)
    versions = list(dict.fromkeys([*sequence.initial, *saved]))
    for version in versions:
        simpler: list[Version] = []
        if version.order or version.layout:
            simpler.append(dataclasses.replace(version, order=0, layout=0))
        optional = {c.name for c in CATALOGUE[version.role] if c.percent is not None}
        for name, choice in version.parts:
            if name in optional:
                parts = dict(version.parts)
                del parts[name]
                simpler.append(dataclasses.replace(version, parts=_normalized(version.role, parts)))
            for k, value in enumerate(choice):
                if value:
                    parts = dict(version.parts)
                    parts[name] = choice[:k] + (0,) + choice[k + 1 :]
                    simpler.append(dataclasses.replace(version, parts=_normalized(version.role, parts)))
        for new in simpler:
            yield _with_versions(sequence, lambda v, old=version, new=new: new if v == old else v)


def shrink(sequence: Sequence, fails: Callable[[Sequence], bool], budget: int = 400) -> Sequence:
    """A smaller sequence that still ``fails`` (greedy: take the first smaller candidate that fails,
    start again from it), trying at most ``budget`` candidates."""
    best, tried = sequence, 0
    improved = True
    while improved and tried < budget:
        improved = False
        for candidate in _smaller(best):
            if candidate == best:
                continue
            tried += 1
            if fails(candidate):
                best, improved = candidate, True
                break
            if tried >= budget:
                break
    return best


def texts_of(sequence: Sequence, names: dict[str, str]) -> dict[Version, str]:
    """Every version's text; with ``fixed_size``, each module's texts padded to one length."""
    versions: dict[str, list[Version]] = {role: [] for role in sequence.roles}
    for version in sequence.initial:
        versions[version.role].append(version)
    for step in sequence.steps:
        for action in step.actions:
            versions[action.role] += [v for v in (action.first, action.version) if v is not None]
    texts: dict[Version, str] = {}
    for vs in versions.values():
        rendered = {v: v.render(names) for v in vs}
        if sequence.fixed_size:
            size = max(len(t.encode()) for t in rendered.values()) + 4
            rendered = {v: t + "#" + "~" * (size - len(t.encode()) - 2) + "\n" for v, t in rendered.items()}
        texts.update(rendered)
    return texts


# -- the oracle worker ------------------------------------------------------------


class OracleError(Exception):
    pass


class Oracle:
    """A persistent ``python fuzz_oracle.py`` process: module texts in, fingerprints out."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.process: subprocess.Popen[str] | None = None
        self.pending = 0  # requests sent, not yet received

    def _start(self) -> subprocess.Popen[str]:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-u", ORACLE_PATH],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        return self.process

    def ask(self, modules: list[tuple[str, str]], effective: dict[str, str | None], current: dict[str, str | None]) -> dict[str, Any]:
        self.send(modules, effective, current)
        return self.receive()

    def send(self, modules: list[tuple[str, str]], effective: dict[str, str | None], current: dict[str, str | None]) -> None:
        """Ask, without waiting: the worker computes while the session runs its cell."""
        process = self._start()
        assert process.stdin is not None
        request = {"modules": modules, "effective": effective, "current": current}
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            self.pending += 1
        except OSError as error:
            self.close()
            raise OracleError(f"the oracle worker died ({error})") from error

    def receive(self) -> dict[str, Any]:
        process = self.process
        if process is None or process.stdout is None:
            raise OracleError("the oracle worker is gone")
        ready, _, _ = select.select([process.stdout], [], [], self.timeout)
        if not ready:
            self.close()
            raise OracleError(f"the oracle worker did not answer in {self.timeout} s")
        line = process.stdout.readline()
        self.pending -= 1
        if not line:
            self.close()
            raise OracleError("the oracle worker died")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise OracleError(answer["error"])
        return answer

    def drain(self) -> None:
        """Drop the answers nobody waited for (a sequence that stopped at a crash after asking)."""
        while self.pending > 0:
            with contextlib.suppress(OracleError):
                self.receive()

    def close(self) -> None:
        self.pending = 0
        if self.process is not None:
            with contextlib.suppress(Exception):
                self.process.kill()
                self.process.wait(5)
            for stream in (self.process.stdin, self.process.stdout):
                with contextlib.suppress(Exception):
                    stream.close()  # type: ignore[union-attr]
            self.process = None

    def __enter__(self) -> Oracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- comparing fingerprints -----------------------------------------------------------


def normal(value: Any) -> Any:
    """What the worker's answer looks like after its JSON trip."""
    return json.loads(json.dumps(value))


def differences(expected: Any, got: Any, path: str = "", limit: int = 6) -> list[str]:
    out: list[str] = []

    def walk(e: Any, g: Any, p: str) -> None:
        if len(out) >= limit or e == g:
            return
        if isinstance(e, dict) and isinstance(g, dict):
            for key in list(dict.fromkeys([*e, *g])):
                if key not in g:
                    out.append(f"{p}.{key}: fresh import has {short(e[key])}, hotswap has nothing")
                elif key not in e:
                    out.append(f"{p}.{key}: fresh import has nothing, hotswap has {short(g[key])}")
                else:
                    walk(e[key], g[key], f"{p}.{key}")
            return
        if isinstance(e, list) and isinstance(g, list) and len(e) == len(g) and e[:1] == g[:1]:
            for i, (x, y) in enumerate(zip(e, g)):
                walk(x, y, f"{p}[{i}]")
            return
        out.append(f"{p}: fresh import {short(e)} != hotswap {short(g)}")

    walk(expected, got, path)
    return out


def without_cached_properties(instance: Any, module_print: dict[str, Any]) -> Any:
    """An instance's fingerprint without its cached_property members (their cached values stay: documented)."""
    if not (isinstance(instance, list) and len(instance) == 3 and isinstance(instance[2], dict)):
        return instance
    cls = module_print.get(instance[1])
    members = cls[2]["members"] if isinstance(cls, list) and cls[0] == "class" else {}
    cached = {k for k, m in members.items() if m[0] == "cached_property"}
    return [instance[0], instance[1], {k: v for k, v in instance[2].items() if k not in cached}]


def short(value: Any, size: int = 160) -> str:
    text = json.dumps(value)
    return text if len(text) <= size else text[: size - 3] + "..."


def closure_qualnames(value: Any, found: dict[str, Any]) -> None:
    """Free variables of every ``<locals>`` function in a fingerprint, by qualified name."""
    if isinstance(value, list):
        if len(value) == 5 and value[0] == "fn" and isinstance(value[1], str) and "<locals>" in value[1]:
            found.setdefault(value[1], value[2])
        for item in value:
            closure_qualnames(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            closure_qualnames(item, found)


def is_closure_print(value: Any) -> str | None:
    if isinstance(value, list) and len(value) == 5 and value[0] == "fn" and "<locals>" in str(value[1]):
        return str(value[1])
    return None


# -- what the user holds -----------------------------------------------------------------


@dataclass
class Held:
    """An object the user took at some step; compared with its fresh counterpart while ``valid``."""

    kind: str  # instance, method, class method, closure, import, member
    role: str
    name: str  # module-level name (class, function, enum, value)
    member: str | None  # method or enum member name
    alias: str  # where it sits in the user namespace
    step: int
    origin: Any = None  # kind and defining class of a method; free variables of a closure
    mro: Any = None  # of an instance's (or bound method's) class, when taken
    slots: Any = None  # and its __slots__ (None: it defines none)
    valid: bool = True
    why: str = ""
    # removal keeps it (a tombstone: a module-level function or class, an enum member, a method, an
    # instance of such a class): compared again once a save brings its name back. Plain values
    # are not kept: once gone, they are compared no more (a later name is a new object)
    kept: bool = False


# -- the runner -------------------------------------------------------------------------------


@dataclass
class Divergence:
    step: int
    problems: list[str]
    said: str  # what hotswap printed in that step's cell

    def __str__(self) -> str:
        text = f"step {self.step}: " + "\n  ".join(self.problems)
        if self.said.strip():
            text += "\n  hotswap said:\n    " + self.said.strip().replace("\n", "\n    ")
        return text


@dataclass
class RunResult:
    sequence: Sequence
    steps: int = 0
    divergences: list[Divergence] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    texts: dict[str, list[str]] = field(default_factory=dict)  # module -> texts saved, in order
    excluded: dict[str, int] = field(default_factory=dict)  # why -> how many held objects stopped being compared

    @property
    def ok(self) -> bool:
        return not self.divergences and not self.crashes

    def report(self) -> str:
        lines = [repr(self.sequence)]
        lines += [f"CRASH: {c}" for c in self.crashes]
        lines += [f"DIVERGENCE at {d}" for d in self.divergences]
        return "\n".join(lines)


class Runner:
    """Runs sequences in a real IPython shell with hotswap, one after another.

    ``root`` must be on ``sys.path``; module names start with ``prefix``.
    """

    def __init__(
        self,
        shell: Any,
        root: Path,
        oracle: Oracle,
        prefix: str | None = None,
        avoid: frozenset[str] = ALL_KNOWN,
        mode: str = "2",
        fresh_session: bool = True,
    ) -> None:
        self.shell = shell
        self.root = Path(root)
        self.oracle = oracle
        self.prefix = prefix or f"fz_{uuid.uuid4().hex[:8]}"
        self.avoid = avoid
        self.mode = mode  # the %autoreload mode ("off": a self-test of the fuzzer, which must then fail)
        # False: one hotswap session serves sequence after sequence (loaded again only when the
        # detection setting changes, or for a sequence that imports before loading): a long
        # session, and much faster where many modules are loaded (each load adopts them all).
        self.fresh_session = fresh_session
        self.count = 0
        self._loaded: bool | None = None  # the events setting of the session kept loaded
        self._config: dict[str, Any] | None = None  # Hotswap config values to put back

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Unload hotswap if this runner left it loaded; put the configuration back."""
        self._unload()

    def _configure(self, events: bool) -> None:
        """Detection as the sequence says; the fuzzer's own files are not the user's modules."""
        settings = {"events": events, "exclude_paths": [str(Path(fuzz_oracle.__file__).resolve().parent)]}
        config = self.shell.config.Hotswap
        if self._config is None:
            self._config = {key: config.get(key, _ABSENT) for key in settings}
        config.update(settings)

    def _unload(self) -> None:
        from hotswap import _ipython

        if _ipython.session_of(self.shell) is not None:
            with _quiet():
                self.shell.run_line_magic("unload_ext", "hotswap")
        self.shell.extension_manager.loaded.discard("hotswap")
        self._loaded = None
        if self._config is not None:
            config = self.shell.config.Hotswap
            for key, value in self._config.items():
                if value is _ABSENT:
                    config.pop(key, None)
                else:
                    config[key] = value
            self._config = None

    # -- one sequence --

    def run(self, sequence: Sequence) -> RunResult:
        self.count += 1
        self.oracle.drain()
        base = f"{self.prefix}_{self.count}"
        folder = self.root
        names = {role: f"{base}_{role}" for role in sequence.roles}
        paths = {role: folder / f"{names[role]}.py" for role in sequence.roles}
        if sequence.package:
            folder = self.root / f"{base}_pkg"
            folder.mkdir()
            (folder / "__init__.py").write_text("")
            names = {role: f"{base}_pkg.{base}_{role}" for role in sequence.roles}
            paths = {role: folder / f"{base}_{role}.py" for role in sequence.roles}
        modules = [(names[r], str(paths[r])) for r in sequence.roles]
        texts = texts_of(sequence, names)
        result = RunResult(sequence, texts={names[r]: [] for r in sequence.roles})
        state = _State(names, paths, modules, folder=folder if sequence.package else None)
        for version in sequence.initial:
            self._save(state, version.role, texts[version], "write", result)
        importlib.invalidate_caches()
        names_before = set(self.shell.user_ns)
        history = self.shell.history_manager
        history_before = (len(history.input_hist_parsed), len(history.input_hist_raw))
        try:
            if sequence.adopt:
                self._unload()  # imported before loading
            else:
                self._load(state, sequence, result)
            imports = "\n".join(f"import {names[r]} as mod_{r}" for r in sequence.roles)
            self._ask_oracle(state, result)
            said = self._cell(state, imports, result, history=True)
            if result.crashes:
                return result
            if not self._check(state, 0, said, result):
                return result
            self._import_names(state, 0, result)
            self._hold(state, 0)
            for number, step in enumerate(sequence.steps, 1):
                self._before(state, step, sequence, result)
                self._apply(state, step, texts, result)
                if step.event == "exclude":
                    self._cell(state, f"%aimport {state.names[step.target]}", result)
                if sequence.adopt and number == 1:
                    # Modules imported (and names taken) before loading, and saved again since.
                    # A module saved broken then runs a text hotswap never saw: its linecache
                    # cannot hold it (inherent), until the module runs a text hotswap read.
                    state.unknown_text = {
                        state.names[a.role]: state.effective[state.names[a.role]]
                        for a in step.actions
                        if a.version is not None and a.version.broken
                    }
                    self._load(state, sequence, result)
                self._ask_oracle(state, result)
                said = self._cell(state, "pass", result)
                result.steps = number
                if result.crashes or not self._check(state, number, said, result):
                    return result
                if step.imports:
                    self._import_names(state, number, result)
                self._hold(state, number)
                if result.crashes:
                    return result
            return result
        finally:
            for held in state.held:
                if not held.valid:
                    result.excluded[held.why] = result.excluded.get(held.why, 0) + 1
            keep = not (self.fresh_session or sequence.adopt or result.crashes or state.first_shell)
            self._teardown(state, names_before, keep)
            del history.input_hist_parsed[history_before[0] :]  # load() reads them: keep them short
            del history.input_hist_raw[history_before[1] :]

    def _load(self, state: _State, sequence: Sequence, result: RunResult) -> None:
        if self._loaded is not None and self._loaded != sequence.events:
            self._unload()
        if self._loaded is None:
            self._configure(sequence.events)
            self._cell(state, "%load_ext hotswap", result)
            self._loaded = sequence.events
        state.session = _hotswap_session(self.shell)
        self._cell(state, f"%autoreload {self.mode}" + (" --full" if sequence.full else ""), result)

    def _before(self, state: _State, step: Step, sequence: Sequence, result: RunResult) -> None:
        """The cells of a life event that come before the step's saves."""
        if step.event == "reload_ext":
            self._cell(state, "%unload_ext hotswap", result)
            self._loaded = None
            self._load(state, sequence, result)
        elif step.event == "exclude":
            self._cell(state, f"%aimport -{state.names[step.target]}", result)
        elif step.event == "new_shell":
            self._new_shell(state, sequence, result)

    def _new_shell(self, state: _State, sequence: Sequence, result: RunResult) -> None:
        """``clear_instance()``, ``instance()``, ``%load_ext hotswap``: a new shell takes over. Its
        namespace starts empty: the modules are imported again; the objects taken so far are
        kept by the harness (as a test runner keeps them) and put in the new namespace."""
        from IPython.core.interactiveshell import InteractiveShell

        old = self.shell
        if state.first_shell is None:
            state.first_shell = old
        InteractiveShell.clear_instance()
        self.shell = InteractiveShell.instance(config=old.config)
        self.shell.user_ns.update({held.alias: old.user_ns[held.alias] for held in state.held if held.kind != "import" and held.alias in old.user_ns})
        self._loaded = None
        self._load(state, sequence, result)
        lines = [f"import {name} as mod_{role}" for role, name in state.names.items()]
        for held in state.held:  # names taken with `from m import x` are taken again, if m has them
            if held.kind != "import" or not held.valid:
                continue
            if hasattr(sys.modules.get(state.names[held.role]), held.name):
                lines.append(f"from {state.names[held.role]} import {held.name} as {held.alias}")
            else:
                held.valid, held.why = False, "taken in a shell since replaced, its name removed then"
        self._cell(state, "\n".join(lines), result, history=True)

    def _first_shell_back(self, state: _State) -> None:
        """The shell the runner was given is the instance again (the new one unloaded, dropped)."""
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import SingletonConfigurable

        first, state.first_shell = state.first_shell, None
        if first is None:
            return
        self._unload()
        # Dropped for good: IPython's atexit hook would keep it (and all it held) alive until exit,
        # then reset it (a gc.collect each: minutes at the end of a long run).
        atexit.unregister(self.shell.atexit_operations)
        self.shell.history_manager.end_session()
        InteractiveShell.clear_instance()
        sys.modules[first.user_module.__name__] = first.user_module  # a new shell takes __main__
        for cls in type(first).mro():
            if issubclass(cls, SingletonConfigurable) and cls is not SingletonConfigurable:
                cls._instance = first
        self.shell = first
        self.shell.extension_manager.loaded.discard("hotswap")

    def _apply(self, state: _State, step: Step, texts: dict[Version, str], result: RunResult) -> None:
        """Save (or delete, or symlink) the files of one step."""
        if step.event in ("move", "move_back") and state.folder is not None:
            away = state.folder.with_name(state.folder.name + "_away")
            os.rename(state.folder, away)
            state.away = dict(state.current)
            state.current.update(dict.fromkeys(state.current))
            if step.event == "move_back":
                os.rename(away, state.folder)
        if step.event in ("restore", "move_back") and state.away is not None:
            if step.event == "restore":
                os.rename(state.folder.with_name(state.folder.name + "_away"), state.folder)  # type: ignore[union-attr]
            state.current.update(state.away)
            state.away = None
        for action in step.actions:
            if action.kind == "delete":
                state.paths[action.role].unlink()
                state.current[state.names[action.role]] = None
                continue
            if action.kind == "link":
                self._link(state, action.role, texts[action.version], result)  # type: ignore[index]
                continue
            assert action.version is not None
            if action.first is not None:
                self._save(state, action.role, texts[action.first], action.mode, result)
            self._save(state, action.role, texts[action.version], action.mode, result)

    def _teardown(self, state: _State, names_before: set[str], keep: bool) -> None:
        self._first_shell_back(state)
        if not keep:
            self._unload()
        for name in set(self.shell.user_ns) - names_before:  # cheaper than shell.reset() (a gc.collect)
            del self.shell.user_ns[name]
        for name, _ in state.modules:
            sys.modules.pop(name, None)
        if state.folder is not None:
            sys.modules.pop(state.folder.name, None)
            shutil.rmtree(state.folder, ignore_errors=True)
            shutil.rmtree(state.folder.with_name(state.folder.name + "_away"), ignore_errors=True)
        for path in state.paths.values():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(FileNotFoundError):
                path.with_name(path.name + ".swp").unlink()
            linecache.cache.pop(str(path), None)
        if state.elsewhere is not None:
            shutil.rmtree(state.elsewhere, ignore_errors=True)
        importlib.invalidate_caches()

    # -- files --

    def _link(self, state: _State, role: str, text: str, result: RunResult) -> None:
        """The module's file replaced (atomically) by a symlink to a new file elsewhere holding ``text``."""
        path = state.paths[role]
        state.elsewhere = path.parent / f"{next(iter(state.names.values()))}_elsewhere"
        state.elsewhere.mkdir(exist_ok=True)
        target = state.elsewhere / f"{path.stem}_{len(result.texts[state.names[role]])}.py"
        target.write_bytes(text.encode())
        link = path.with_name(path.name + ".lnk")
        os.symlink(target, link)
        os.replace(link, path)
        state.current[state.names[role]] = text
        result.texts[state.names[role]].append(text)

    def _save(self, state: _State, role: str, text: str, mode: str, result: RunResult) -> None:
        path = state.paths[role]
        data = text.encode()
        if mode == BAD_BYTES:  # not UTF-8, no coding line: Python says SyntaxError, the save fails
            data = b"# saved in another encoding: caf\xe9\n" + data
            text = data.decode("utf-8", "surrogateescape")  # the oracle's compile() fails on it too
            path.write_bytes(data)
        elif mode == "keep_stat" and path.exists() and path.stat().st_size == len(data):
            before = path.stat()
            path.write_bytes(data)
            os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        elif mode == "atomic":
            temporary = path.with_name(path.name + ".swp")
            temporary.write_bytes(data)
            os.replace(temporary, path)
        else:
            path.write_bytes(data)
        state.current[state.names[role]] = text
        result.texts[state.names[role]].append(text)

    # -- cells --

    def _cell(self, state: _State, source: str, result: RunResult, history: bool = False) -> str:
        """Run one cell; hotswap's messages are returned; a failed cell or an internal error is a crash.

        ``history``: kept in ``In``, as imports typed before ``%load_ext`` must be to be followed.
        """
        errors_before = len(state.session.internal_errors) if state.session else 0
        with _quiet() as said:
            outcome = self.shell.run_cell(source, store_history=history, silent=False)
        text = said.getvalue()
        error = outcome.error_before_exec or outcome.error_in_exec
        if error is not None:
            result.crashes.append(f"the cell {source!r} failed: {type(error).__name__}: {error}\n{text}")
        if state.session is not None and len(state.session.internal_errors) > errors_before:
            errors = state.session.internal_errors[errors_before:]
            result.crashes.append(f"hotswap internal error in cell {source!r}: {errors!r}\n{text}")
        elif "inside hotswap" in text or "internal error" in text or "an error inside hotswap" in text:
            result.crashes.append(f"hotswap failed inside itself in cell {source!r}:\n{text}")
        if builtins.__build_class__ is not _BUILD_CLASS:
            result.crashes.append("builtins.__build_class__ was left patched")
            builtins.__build_class__ = _BUILD_CLASS
        return text

    def _import_names(self, state: _State, step: int, result: RunResult) -> None:
        """``from m import x as i<step>_<role>_x`` for every public name of every module."""
        lines = []
        for role, name in state.names.items():
            module = sys.modules.get(name)
            expected = state.prints.get(name) or {}
            taken = [n for n, p in expected.items() if p[0] not in ("module", "foreign class") and hasattr(module, n)]
            if not taken:
                continue
            aliases = []
            for n in taken:
                alias = f"i{step}_{role}_{n}"
                aliases.append(f"{n} as {alias}")
                origin = is_closure_print(expected[n])
                held = Held("import", role, n, None, alias, step, origin and (origin, expected[n][2]))
                held.kept = expected[n][0] in ("fn", "class")
                state.held.append(held)
            lines.append(f"from {name} import {', '.join(aliases)}")
        if lines:
            self._cell(state, "\n".join(lines), result, history=True)

    def _hold(self, state: _State, step: int) -> None:
        """Keep, in the user namespace, instances, bound methods, closures and enum members made now."""
        ns = self.shell.user_ns
        for role, name in state.names.items():
            module = sys.modules.get(name)
            expected = state.prints.get(name) or {}
            for n, value in expected.items():
                if module is None or not hasattr(module, n):
                    continue
                obj = getattr(module, n)
                if value[0] == "class":
                    info = value[2]
                    if "enum" in info:
                        for member, *_ in info["enum"]:
                            if hasattr(obj, member):
                                alias = f"h{step}_{role}_{n}_{member}"
                                ns[alias] = getattr(obj, member)
                                state.held.append(Held("member", role, n, member, alias, step, kept=True))
                        continue
                    for member, (kind, owner, *_) in info["members"].items():
                        if kind in ("classmethod", "staticmethod") and hasattr(obj, member):
                            # `cb = Point.size`: a method taken from the class (bound to it, for a classmethod)
                            alias = f"h{step}_{role}_{n}_cls_{member}"
                            ns[alias] = getattr(obj, member)
                            held = Held("class method", role, n, member, alias, step, (kind, owner), info["mro"], info.get("slots"), kept=True)
                            state.held.append(held)
                    if not isinstance(info.get("instance"), dict):
                        continue
                    try:
                        instance = obj()
                    except Exception:  # noqa: BLE001, S112 - the comparison says it already
                        continue
                    alias = f"h{step}_{role}_{n}"
                    ns[alias] = instance
                    state.held.append(Held("instance", role, n, None, alias, step, mro=info["mro"], slots=info.get("slots"), kept=True))
                    for member, (kind, owner, *_) in info["members"].items():
                        if kind == "function":
                            try:
                                ns[f"{alias}_{member}"] = getattr(instance, member)
                            except Exception:  # noqa: BLE001, S112
                                continue
                            held = Held("method", role, n, member, f"{alias}_{member}", step, (kind, owner), info["mro"], info.get("slots"), kept=True)
                            state.held.append(held)
                elif value[0] == "fn" and n.startswith("make_") and value[4]:
                    result = value[4].get(fuzz_oracle.SAMPLE_KEYS[1][0])
                    qualname = is_closure_print(result)
                    if qualname is None:
                        continue
                    alias = f"h{step}_{role}_{n}_1"
                    try:
                        ns[alias] = obj(*fuzz_oracle.SAMPLES[1][0])
                    except Exception:  # noqa: BLE001, S112
                        continue
                    state.held.append(Held("closure", role, n, None, alias, step, (qualname, result[2])))

    # -- the oracle --

    def _ask_oracle(self, state: _State, result: RunResult) -> None:
        try:
            self.oracle.send(state.modules, state.effective, state.current)
        except OracleError as error:
            result.crashes.append(f"oracle: {error}")

    def _check(self, state: _State, step: int, said: str, result: RunResult) -> bool:
        try:
            answer = self.oracle.receive()
        except OracleError as error:
            result.crashes.append(f"step {step}: oracle: {error}")
            return False
        state.effective = answer["effective"]
        state.prints = answer["prints"]
        for fingerprint in state.prints.values():
            if fingerprint is not None:
                closure_qualnames(fingerprint, state.freevars_now)
        for qualname, freevars in state.freevars_now.items():
            if state.freevars_first.setdefault(qualname, freevars) != freevars:
                state.flagged.add(qualname)
        state.freevars_now = {}
        problems: list[str] = []
        for name, _ in state.modules:
            expected = state.prints[name]
            module = sys.modules.get(name)
            if expected is None:
                # The fresh import fails even with the last good text of this module: its
                # dependencies no longer give what it imports. (Not generated by the grammar.)
                problems.append(f"{name}: a fresh import fails ({answer['status'][name]}); hotswap kept it")
                continue
            if module is None:
                problems.append(f"{name}: missing from sys.modules")
                continue
            got = normal(fuzz_oracle.module_print(module, state.owned))
            expected = dict(expected)  # state.prints stays as the oracle said, for the held objects
            for n in list(expected):
                qualname = is_closure_print(expected[n])
                if qualname in state.flagged:  # documented: captured variables changed
                    expected[n] = got[n] = ["excluded", "captured variables changed"]
                elif expected[n][0] == "instance" and n in got and got[n][0] == "instance":
                    # Made at import, kept since: an old instance. Its own state stays (the values
                    # cached_property cached too, documented): compare what a fresh one has.
                    value = getattr(module, n)
                    keys = [k for k in expected[n][2] if k != "<repr>"]
                    got[n] = normal(["instance", got[n][1], fuzz_oracle.instance_print(value, keys, state.owned)])
                    expected[n] = without_cached_properties(expected[n], expected)
                    got[n] = without_cached_properties(got[n], expected)
            problems += differences(expected, got, name)
            problems += self._check_linecache(state, name)
        problems += self._check_held(state, step)
        if result.crashes:
            return False
        if problems:
            result.divergences.append(Divergence(step, problems, said))
            return False
        return True

    def _check_linecache(self, state: _State, name: str) -> list[str]:
        text = state.effective.get(name)
        path = dict(state.modules)[name]
        if name in state.unknown_text:
            if text == state.unknown_text[name]:
                return []  # still the text imported before hotswap was loaded (see run())
            del state.unknown_text[name]
        if text is None:
            return []
        expected = text if text.endswith("\n") else text + "\n"
        got = "".join(linecache.getlines(path))
        if got != expected:
            return [f"{name}: linecache does not hold the text that runs"]
        return []

    def _check_held(self, state: _State, step: int) -> list[str]:
        ns = self.shell.user_ns
        problems: list[str] = []
        for held in state.held:
            if not held.valid:
                continue
            name = state.names[held.role]
            expected_module = state.prints.get(name) or {}
            module = sys.modules.get(name)
            expected = expected_module.get(held.name)
            why = _still_comparable(held, expected, state.flagged, expected_module)
            if why in _UNTIL_IT_COMES_BACK and held.kept:
                continue  # removal is a tombstone: compared again once a save brings it back
            if why:
                held.valid, held.why = False, why
                continue
            assert expected is not None
            obj = ns.get(held.alias, _ABSENT)
            where = f"{held.alias} (taken at step {held.step})"
            if obj is _ABSENT:
                problems.append(f"{where}: gone from the user namespace")
                continue
            current = getattr(module, held.name, _ABSENT)
            if held.kind == "import":
                got = normal(fuzz_oracle.value_print(obj, state.owned))
                if expected[0] == "instance" and got[0] == "instance":  # an old instance: see _check
                    keys = [k for k in expected[2] if k != "<repr>"]
                    got = normal(["instance", got[1], fuzz_oracle.instance_print(obj, keys, state.owned)])
                    expected = without_cached_properties(expected, expected_module)
                    got = without_cached_properties(got, expected_module)
                problems += differences(expected, got, where)
                if (callable(obj) or isinstance(obj, type)) and obj is not current:
                    problems.append(f"{where}: is not {name}.{held.name} any more")
            elif held.kind == "instance":
                info = expected[2]
                if type(obj) is not current:
                    problems.append(f"{where}: its class is not {name}.{held.name} any more")
                fresh = info["instance"]
                if isinstance(fresh, dict):
                    # Documented: cached_property values already cached on an instance stay cached.
                    cached = {k for k, m in info["members"].items() if m[0] == "cached_property"}
                    fresh = {k: v for k, v in fresh.items() if k not in cached}
                    got = normal(fuzz_oracle.instance_print(obj, [k for k in fresh if k != "<repr>"], state.owned))
                    problems += differences(fresh, got, where)
                    if "<repr>" in fresh:
                        try:
                            equal = obj == current()
                        except Exception as error:  # noqa: BLE001
                            equal = f"{type(error).__name__}"
                        if equal is not True:
                            problems.append(f"{where}: == a fresh instance gives {equal!r}")
            elif held.kind == "method":
                fresh = expected[2]["instance"]
                if isinstance(fresh, dict) and held.member in fresh:
                    got = normal(fuzz_oracle.function_print(obj, state.owned))
                    problems += differences(fresh[held.member], got, where)
            elif held.kind == "class method":
                entry = expected[2]["members"][held.member]
                got = normal(fuzz_oracle.function_print(obj, state.owned))
                problems += differences(entry[2], got, where)
            elif held.kind == "closure":
                fresh = expected[4].get(fuzz_oracle.SAMPLE_KEYS[1][0]) if expected[4] else None
                got = normal(fuzz_oracle.canon(obj, state.owned, 1))
                problems += differences(fresh, got, where)
            elif held.kind == "member":
                entry = next(e for e in expected[2]["enum"] if e[0] == held.member)
                kept = getattr(current, held.member, _ABSENT)
                if obj is not kept:
                    problems.append(f"{where}: is not {name}.{held.name}.{held.member} any more")
                got = normal([held.member, fuzz_oracle.canon(obj.value, state.owned), fuzz_oracle.instance_print(obj, list(entry[2]), state.owned)])
                problems += differences(entry, got, where)
        return problems


_ABSENT = object()
_BUILD_CLASS = builtins.__build_class__


_NAME_GONE, _MEMBER_GONE, _METHOD_GONE = (
    "its name was removed from the module",
    "the enum member was removed",
    "the method was removed",
)
_UNTIL_IT_COMES_BACK = frozenset({_NAME_GONE, _MEMBER_GONE, _METHOD_GONE})


def _still_comparable(
    held: Held, expected: Any, flagged: set[str], module_print: dict[str, Any] | None = None
) -> str | None:
    """Why a held object can no longer be compared (a documented limit), or None. ``module_print``:
    the fresh fingerprint of the held object's module."""
    if expected is None:
        if held.kind in ("method", "class method") and module_print:
            # Its class is gone (a tombstone), but the class that defines the method may still be
            # there: a method that changes kind there meanwhile is dropped (``Point3.size`` taken,
            # Point3 removed while ``Point.size`` becomes ``size = 4``: when both come back, the
            # method taken is not the new one). Compared no more, as when its class stays.
            owner = module_print.get(held.origin[1])
            entry = owner[2]["members"].get(held.member) if isinstance(owner, list) and owner[0] == "class" else None
            if entry is not None and tuple(entry[:2]) != tuple(held.origin):
                return "the method changed kind or defining class"
        return _NAME_GONE
    if held.kind == "import":
        if held.origin and held.origin[0] in flagged:
            return "closure: captured variables changed"
        return None
    if held.kind in ("instance", "method", "class method", "member"):
        if expected[0] != "class":
            return "its class was removed from the module"
        info = expected[2]
        if held.kind == "member":
            if "enum" not in info or held.member not in [e[0] for e in info["enum"]]:
                return _MEMBER_GONE
            return None
        if "enum" in info:
            return "its class became an enum"
        if info["mro"] != held.mro:
            # Documented: CPython refuses __bases__ assignments that change the layout (here
            # Point3(Point) <-> Point3(object)); the new class replaces the name, old instances stay.
            return "its class's bases changed"
        if info.get("slots") != held.slots:
            # Documented: a class whose __slots__ changed (an attrs slotted class that gained or lost
            # a field) is replaced; old instances keep the old class and its code.
            return "its class's __slots__ changed"
        if held.kind in ("method", "class method"):
            entry = info["members"].get(held.member)
            if entry is None:
                return _METHOD_GONE
            if tuple(entry[:2]) != tuple(held.origin):
                return "the method changed kind or defining class"
        return None
    if held.kind == "closure":
        if expected[0] != "fn":
            return "its factory was removed"
        if held.origin[0] in flagged:
            return "closure: captured variables changed"
        return None
    return None


@dataclass
class _State:
    names: dict[str, str]  # role -> module name
    paths: dict[str, Path]
    modules: list[tuple[str, str]]  # (name, path) in dependency order
    current: dict[str, str | None] = field(default_factory=dict)  # text on disk (None: deleted)
    effective: dict[str, str | None] = field(default_factory=dict)  # last good text (the oracle's)
    prints: dict[str, Any] = field(default_factory=dict)  # the oracle's fingerprints of this step
    held: list[Held] = field(default_factory=list)
    freevars_first: dict[str, Any] = field(default_factory=dict)
    freevars_now: dict[str, Any] = field(default_factory=dict)
    flagged: set[str] = field(default_factory=set)  # <locals> functions whose captured variables changed
    unknown_text: dict[str, str | None] = field(default_factory=dict)  # module -> text it ran before load
    session: Any = None
    elsewhere: Path | None = None  # the folder of symlink targets
    first_shell: Any = None  # the runner's shell, while a new shell has taken over
    folder: Path | None = None  # the package folder (Sequence.package)
    away: dict[str, str | None] | None = None  # the texts on disk while the folder is moved away

    @property
    def owned(self) -> set[str]:
        return set(self.names.values())


def _hotswap_session(shell: Any) -> Any:
    from hotswap import _ipython

    return _ipython.session_of(shell)


@contextlib.contextmanager
def _quiet() -> Any:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


def make_shell() -> Any:
    """A real InteractiveShell for a standalone run (history off disk)."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)


# -- threads -----------------------------------------------------------------------------------

THREAD_FUNCTIONS = 10


def thread_version_a(b: str, number: int, whole: bool) -> str:
    """Version ``number`` of the module the thread calls: every value it returns says ``number``.

    ``f()`` calls ``p0() ... p9()``, ``C().m()`` and reads ``TAG`` in file order, the order in
    which a reload applies them; ``whole`` adds ``from __future__ import annotations``, whose
    toggling makes hotswap re-run the whole module.
    """
    lines = ['"""Called from a thread while it is edited."""']
    if whole:
        lines.append("from __future__ import annotations")
    lines += [f"from {b} import K", "", "", "class Oops(Exception):", "    pass", ""]
    for i in range(THREAD_FUNCTIONS):
        lines += ["", f"def p{i}():", f"    return {number}", ""]
    lines += ["", "class C:", "    def m(self):", f"        return {number}", ""]
    calls = ", ".join(f"p{i}()" for i in range(THREAD_FUNCTIONS))
    body = f"raise Oops({number})" if number % 10 == 5 else f"return ({calls}, C().m(), TAG, K)"
    lines += ["", "def f():", f"    {body}", "", f"TAG = {number}", ""]
    return "\n".join(lines)


def thread_version_b(number: int) -> str:
    return f"K = {number}\n"


@dataclass
class ThreadWatch:
    """Calls ``call()`` in a loop in a thread; records what it saw with the edits settled around it.

    The main thread calls ``progress(n)`` after each edit's cell. If no progress is made for
    ``stall_after`` seconds, the thread stops by itself (``stalled``): a reload that waits for
    this thread to let go of the interpreter then finishes, and the test can say so.
    """

    call: Callable[[], Any]
    own_errors: tuple[type[BaseException], ...]
    stall_after: float = 5.0
    settled: int = 0  # edits whose cell has finished
    calls: int = 0
    stalled: float = 0.0  # seconds without progress when the thread gave up
    observations: set[tuple[int, int, Any]] = field(default_factory=set)  # distinct ones

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._last = time.monotonic()

    def progress(self, settled: int) -> None:
        self.settled = settled
        self._last = time.monotonic()

    def _loop(self) -> None:
        while not self._stop.is_set():
            waited = time.monotonic() - self._last
            if waited > self.stall_after:
                self.stalled = waited
                return
            start = self.settled
            try:
                value = self.call()
            except self.own_errors as error:
                value = ("raised", type(error).__name__, error.args)
            except BaseException as error:  # noqa: BLE001 - what the check is about
                value = ("CRASH", f"{type(error).__name__}: {error}")
            self.calls += 1
            self.observations.add((start, self.settled, value))

    def __enter__(self) -> ThreadWatch:
        self._last = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def check_thread_observations(
    observations: Iterable[tuple[int, int, Any]], valid: Callable[[Any, int, int], tuple[str, str] | None]
) -> dict[str, list[str]]:
    """Problems by kind ("bug", or a KNOWN_LIMITS key), at most 10 of each."""
    problems: dict[str, list[str]] = {}
    for start, end, value in observations:
        found = valid(value, start, end)
        if found:
            kind, why = found
            listed = problems.setdefault(kind, [])
            if len(listed) < 10:
                listed.append(f"between edits {start} and {end + 1}: {why}")
    return problems


HALF_APPLIED = "half-applied-module-visible-to-threads"


def thread_value_problem(
    value: Any, start: int, end: int, k_of: Callable[[int], int], final: int
) -> tuple[str, str] | None:
    """Is ``value`` what ``f()`` of one version in ``start .. end + 1`` returns (K from b's version then)?

    ``(kind, why)`` when not: a value from no version there, or anything but the final version
    once all edits are done, is a "bug"; a view of a module half-way through a reload (values of
    a newer version read before those of an older one, or an exception) is ``HALF_APPLIED``.
    """
    allowed = range(start, end + 2)
    settled = start == end == final  # no reload could be running during this call
    if isinstance(value, tuple) and value[:1] == ("CRASH",):
        return ("bug" if settled else HALF_APPLIED), f"f() raised {value[1]}"
    if isinstance(value, tuple) and value[:1] == ("raised",):
        number = value[2][0] if value[2] else None
        if number in allowed and number % 10 == 5:
            return None
        return "bug", f"Oops({number}) from no version in {list(allowed)}"
    *versions, k = value  # p0() ... p9(), C().m(), TAG, in the order f() reads them
    if any(not isinstance(v, int) or v not in allowed for v in versions):
        return "bug", f"f() = {value}: a value from no version in {list(allowed)}"
    if any(later < earlier for earlier, later in itertools.pairwise(versions)):
        # An atomic reload between two reads gives old values then new ones, never new then old.
        kind = "bug" if settled else HALF_APPLIED
        return kind, f"f() = {value}: read a newer version, then an older one (a half-applied module)"
    if k not in {k_of(n) for n in allowed}:
        return "bug", f"K = {k} belongs to no version in {list(allowed)}"
    return None

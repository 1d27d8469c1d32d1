"""What a top-level statement reads and binds when it runs, and what it may change in place.

The planner (``_diff``) asks it of every statement of both texts of a reload;
the answer depends on the statement's text alone, so it is kept by that text:
a statement that did not change is never scanned again.
"""

from __future__ import annotations

import ast
from typing import NamedTuple

from ._bounded import MIB, SizedCache

__all__ = ["NAMESPACE", "Names", "attributes_read", "bound_by", "names_of"]

_DYNAMIC_CALLS = frozenset({"globals", "locals", "vars", "exec", "eval"})
_NAMESPACE_CALLS = frozenset({"globals", "locals", "vars", "dir"})  # without arguments: the module's names
# Read by a statement that looks at the module's names as a whole (``globals()``, ``dir()``):
# it runs again when any name of the module changed before it.
NAMESPACE = "<the module's names>"


class Names(NamedTuple):
    """What one statement does with the module's names."""

    reads: frozenset[str]  # read while it runs (not in function bodies)
    binds: frozenset[str]  # bound at module level
    dynamic: bool  # binds names that cannot be seen statically (``import *``, ``exec``...)
    mutates: frozenset[str]  # names whose object it may change in place (``REG.append(x)``)


_SCANS: SizedCache[str, Names] = SizedCache(4 * MIB, 4096)  # statement text -> its names


def names_of(node: ast.stmt, segment: str) -> Names:
    """What a statement reads and binds, kept by its exact text (``segment``): unchanged text is free."""
    names = _SCANS.get(segment)
    if names is None:
        scan = _Scan.of(node)
        names = Names(frozenset(scan.reads), frozenset(scan.binds), scan.dynamic, frozenset(scan.mutates))
        _SCANS.put(segment, names, len(segment) + 512)  # (+ its sets of names)
    return names


def bound_by(node: ast.stmt) -> set[str]:
    """The names a statement binds (not kept: for class bodies, scanned once per text)."""
    return _Scan.of(node).binds


def attributes_read(node: ast.stmt) -> set[tuple[str, str]]:
    """``(Foo, foo)`` for each ``Foo.foo`` a statement reads while it runs (not in function
    bodies): not kept, asked only of a module where a class attribute was replaced."""
    return _Scan.of(node).attributes


class _Scan(ast.NodeVisitor):
    """The names a top-level statement reads and binds when it runs.

    Function bodies run later, when called: only their decorators, defaults
    and annotations are read now. Class bodies run now, but bind class
    attributes, not module names.
    """

    def __init__(self) -> None:
        self.reads: set[str] = set()
        self.binds: set[str] = set()
        self.mutates: set[str] = set()  # ``REG.append(x)``, ``TABLE[k] = v``, ``TABLE[k] += v``
        self.attributes: set[tuple[str, str]] = set()  # ``Foo.foo`` read
        self.dynamic = False
        self._class_depth = 0

    @classmethod
    def of(cls, node: ast.stmt) -> _Scan:
        scan = cls()
        scan.visit(node)
        return scan

    def _bind(self, name: str) -> None:
        if self._class_depth == 0:
            self.binds.add(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.reads.add(node.id)
        else:
            self._bind(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name):
            self.attributes.add((node.value.id, node.attr))
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.reads.add(node.target.id)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name):
            self.mutates.add(node.value.id)
        self.generic_visit(node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for decorator in getattr(node, "decorator_list", ()):
            self.visit(decorator)
        args = node.args
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.visit(default)
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and arg.annotation is not None:
                self.visit(arg.annotation)
        returns = getattr(node, "returns", None)
        if returns is not None:
            self.visit(returns)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_function(node)
        self._bind(node.name)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_function(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for child in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(child)
        self._class_depth += 1
        for statement in node.body:
            self.visit(statement)
        self._class_depth -= 1
        self._bind(node.name)

    def _visit_comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp) -> None:
        inner = _Scan()
        inner._class_depth = self._class_depth
        inner.generic_visit(node)
        local = {
            n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)
        }
        self.reads |= inner.reads - local
        self.mutates |= inner.mutates - local
        self.attributes |= {a for a in inner.attributes if a[0] not in local}
        walrus = {
            n.target.id
            for n in ast.walk(node)
            if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name)
        }
        for name in walrus:
            self._bind(name)
        self.dynamic |= inner.dynamic

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_comprehension

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._bind(alias.asname or alias.name.partition(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.dynamic = True
            else:
                self._bind(alias.asname or alias.name)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            self.mutates.add(node.func.value.id)  # a method may change its object
        if isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC_CALLS:
            self.dynamic = True
        if isinstance(node.func, ast.Name) and node.func.id in _NAMESPACE_CALLS and not node.args:
            self.reads.add(NAMESPACE)
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._bind(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self._bind(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._bind(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self._bind(node.rest)
        self.generic_visit(node)

"""Adoption: does a module imported before hotswap was loaded run the text of its file?

A file saved between the import and the load would otherwise be taken for the
code that runs. The exact answer is the module's code in ``__pycache__``, when
that file is known to hold what the import compiled; without it, the module is
compared with the text: its functions' bytecode, the names the text binds, the
attributes of its classes, and its top-level ``NAME = literal`` values.

Each comparison may say "changed" when in doubt (the whole module then runs
again at the next check), never "same" when the text differs in what it runs.

Loaded again in this process (``%load_ext`` after ``%unload_ext``, a new shell),
there is no doubt to have: the session before knew the text each module ran, and
says it here (``remember_running``). A save it had not applied, or that failed,
is then an edit like any other for the new session.
"""

from __future__ import annotations

import ast
import functools
import marshal
import os
import weakref
from collections.abc import Iterable, Mapping
from types import CodeType, ModuleType
from typing import Any, NamedTuple

from ._source import SourceVersion
from ._vocab import UNKNOWN, assignment_targets, attribute_of_name, is_dunder

__all__ = [
    "code_it_was_imported_from",
    "remember_running",
    "ran_before",
    "runs_this_text",
    "saved_since_start",
]

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# Blocks whose body runs at import, at least in part (a loop that runs no time makes a name
# said to be bound missing, so "changed": the safe side)
_BLOCKS = (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)


class _AttributeSet(NamedTuple):
    """A top-level ``Point.tag = 5``: ``literal`` is ``UNKNOWN`` unless an immutable literal."""

    owner: str
    attribute: str
    literal: object


class _Bytecode(NamedTuple):
    """A module's ``__pycache__`` file: its code, and when it was written."""

    code: CodeType
    written_ns: int


# module name -> (that module, weakly; the text it ran when the last session ended)
_RAN_WHEN_UNLOADED: dict[str, tuple[weakref.ref[ModuleType], SourceVersion]] = {}


def remember_running(module: ModuleType, version: SourceVersion) -> None:
    """A session ends: ``module`` runs ``version`` (whatever its file says now)."""
    _RAN_WHEN_UNLOADED[module.__name__] = (weakref.ref(module), version)


def ran_before(module: ModuleType, file: SourceVersion) -> SourceVersion | None:
    """The text ``module`` runs, as a session before this one knew it (``None``: no session knew).

    A module reloaded from its file while no session ran (``importlib.reload``)
    runs its file: its ``__pycache__`` says so, when it holds that file's code.
    """
    kept = _RAN_WHEN_UNLOADED.pop(module.__name__, None)
    if kept is None or kept[0]() is not module or kept[1].path != file.path:
        return None
    if kept[1].digest != file.digest:
        try:
            if code_it_was_imported_from(module) == file.compile():
                return file
        except (SyntaxError, ValueError):
            pass
    return kept[1]


def saved_since_start(version: SourceVersion) -> bool:
    """Could the file have been saved after this process imported it?

    A file last changed before the process started holds the text it
    imported; only the others are compared with what runs (a compile each).
    """
    started = _process_start_ns()
    return started is None or version.changed_at_ns() >= started


@functools.lru_cache(maxsize=1)
def _process_start_ns() -> int | None:
    """When this process started (Linux: /proc), with a second's margin; None elsewhere."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        with open("/proc/stat", "rb") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith(b"btime"))
        ticks = os.sysconf("SC_CLK_TCK")
        started = boot + int(fields[19]) / ticks  # field 22, starttime, counted after the ")"
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return int((started - 1) * 1e9)


def runs_this_text(module: ModuleType, version: SourceVersion, imported: Any = UNKNOWN) -> bool:
    """Does the module run the code of this text? (Its functions' bytecode, and the values of
    its top-level ``NAME = literal`` assignments, compared.)

    For a module imported before hotswap was loaded: a file saved in between
    would otherwise be taken for the code that runs. ``imported``: the module's
    code from ``__pycache__`` (``code_it_was_imported_from``), if the caller has it.
    """
    try:
        code = version.compile()
        tree = ast.parse(version.text)
    except (SyntaxError, ValueError):
        return False
    if imported is UNKNOWN:
        imported = code_it_was_imported_from(module)
    if imported is not None:  # exact: the bytecode the import ran, from __pycache__
        return bool(imported == code)
    namespace = vars(module)
    owner = module.__name__
    return (
        _holds_what_it_defines(namespace, tree)
        and _classes_hold_only_their_text(namespace, owner, tree)
        and _attributes_hold_their_literals(namespace, tree)
        and _holds_only_what_it_binds(namespace, tree)
        and _names_hold_their_literals(namespace, tree)
        and _runs_its_functions(namespace, owner, code)
    )


def code_it_was_imported_from(module: ModuleType) -> CodeType | None:
    """The module's code as its import compiled it, from its ``__pycache__`` file, when that
    file is known to hold it: its functions' code is that of the module (compared), or, with no
    function to compare, the file was written since this process started (by its import)."""
    cached = _bytecode_of(module)
    if cached is None:
        return None
    pairs = _own_functions_and_their_code(module, cached.code)
    if pairs:  # another text than the one imported (or another function): not it
        return cached.code if all(running == compiled for running, compiled in pairs) else None
    started = _process_start_ns()
    return cached.code if started is not None and cached.written_ns >= started else None


def _bytecode_of(module: ModuleType) -> _Bytecode | None:
    cached = getattr(getattr(module, "__spec__", None), "cached", None)
    if not isinstance(cached, str):
        return None
    try:
        with open(cached, "rb") as file:
            written = os.fstat(file.fileno()).st_mtime_ns
            data = file.read()
        code = marshal.loads(memoryview(data)[16:])
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return _Bytecode(code, written) if isinstance(code, CodeType) else None


def _own_functions_and_their_code(module: ModuleType, code: CodeType) -> list[tuple[CodeType, CodeType]]:
    """(running code, compiled code) of each top-level function of the module that ``code``
    defines under the same name."""
    compiled = _code_constants(code)
    pairs = []
    for name, value in vars(module).items():
        function_code = getattr(value, "__code__", None)
        if isinstance(function_code, CodeType) and function_code.co_name == name and name in compiled:
            if getattr(value, "__module__", None) == module.__name__:
                pairs.append((function_code, compiled[name]))
    return pairs


def _code_constants(code: CodeType) -> dict[str, CodeType]:
    return {c.co_name: c for c in code.co_consts if isinstance(c, CodeType)}


# The comparisons of runs_this_text, each False as soon as the text differs from what runs


def _holds_what_it_defines(namespace: Mapping[str, Any], tree: ast.Module) -> bool:
    """No function or class (nor other name surely bound) added since the import."""
    return all(name in namespace for name in _defined_and_kept(tree))


def _classes_hold_only_their_text(namespace: Mapping[str, Any], owner: str, tree: ast.Module) -> bool:
    """Each top-level class of the text has no plain attribute that neither its body nor a
    top-level ``Class.attr = ...`` sets (one that a removed statement had set)."""
    set_after = {(found.owner, found.attribute) for found in _attributes_set(tree)}
    classes = (node for node in tree.body if isinstance(node, ast.ClassDef))
    return all(_class_holds_only_its_text(namespace, owner, node, set_after) for node in classes)


def _class_holds_only_its_text(
    namespace: Mapping[str, Any], owner: str, node: ast.ClassDef, set_after: set[tuple[str, str]]
) -> bool:
    cls = namespace.get(node.name)
    if not isinstance(cls, type) or cls.__module__ != owner or cls.__qualname__ != node.name:
        return True  # not the class this statement made: nothing to compare
    body = {name for statement in node.body for name in _names_bound_by(statement)}
    return all(_sunder(name) or name in body or (node.name, name) in set_after for name in vars(cls))


def _sunder(name: str) -> bool:
    """``_x_``-like (``__dict__``, an enum's ``_value_``): set by Python, not by the text."""
    return name.startswith("_") and name.endswith("_")


def _attributes_hold_their_literals(namespace: Mapping[str, Any], tree: ast.Module) -> bool:
    """Each top-level ``Point.tag = 5`` was there at the import, with that value."""
    for found in _attributes_set(tree):
        if found.owner in namespace:
            value = getattr(namespace[found.owner], found.attribute, UNKNOWN)
            if value is UNKNOWN or (found.literal is not UNKNOWN and not _same_value(value, found.literal)):
                return False  # `Point.tag = 5` added or changed since the import
    return True


def _holds_only_what_it_binds(namespace: Mapping[str, Any], tree: ast.Module) -> bool:
    """No name that the text no longer binds (a submodule is bound by importing it); with a
    ``from m import *``, any name may be m's: nothing to compare."""
    if _imports_star(tree):
        return True
    bound = _bound_anywhere(tree)
    return all(
        name in bound or is_dunder(name) or isinstance(value, ModuleType) for name, value in namespace.items()
    )


def _names_hold_their_literals(namespace: Mapping[str, Any], tree: ast.Module) -> bool:
    literals = _literal_assignments(tree).items()
    return all(name not in namespace or _same_value(namespace[name], value) for name, value in literals)


def _runs_its_functions(namespace: Mapping[str, Any], owner: str, code: CodeType) -> bool:
    """The module's own functions and classes run the code the text defines for them."""
    compiled = _code_constants(code)
    for name, value in namespace.items():
        body = compiled.get(name)
        if body is None or getattr(value, "__module__", None) != owner:
            continue
        if isinstance(value, type):
            if value.__qualname__ == name and not _class_runs(value, body):
                return False
        elif isinstance(getattr(value, "__code__", None), CodeType):
            if value.__code__.co_name == name and not _same_code(value.__code__, body):
                return False
    return True


def _class_runs(cls: type, body: CodeType) -> bool:
    """Do the class's own functions run the code its body in this text defines?"""
    compiled = _code_constants(body)
    for name, attribute in vars(cls).items():
        for function in _functions_of(attribute):
            code = function.__code__
            if code.co_name == name and name in compiled and not _same_code(code, compiled[name]):
                return False
    return True


def _functions_of(attribute: object) -> list[Any]:
    if isinstance(attribute, (staticmethod, classmethod)):
        attribute = attribute.__func__
    if isinstance(attribute, property):
        return [f for f in (attribute.fget, attribute.fset, attribute.fdel) if hasattr(f, "__code__")]
    return [attribute] if isinstance(getattr(attribute, "__code__", None), CodeType) else []


def _same_code(a: CodeType, b: CodeType) -> bool:
    """Same instructions, names, constants and lines (tracebacks must show the line that runs)."""
    return _same_outline(a, b) and all(map(_same_constant, a.co_consts, b.co_consts))


def _same_outline(a: CodeType, b: CodeType) -> bool:
    return (
        a.co_code == b.co_code
        and a.co_names == b.co_names
        and a.co_firstlineno == b.co_firstlineno
        and a.co_linetable == b.co_linetable
        and len(a.co_consts) == len(b.co_consts)
    )


def _same_constant(x: object, y: object) -> bool:
    if isinstance(x, CodeType) and isinstance(y, CodeType):
        return _same_code(x, y)
    return type(x) is type(y) and x == y


def _same_value(running: object, literal: object) -> bool:
    try:
        return type(running) is type(literal) and bool(running == literal)
    except Exception:  # noqa: BLE001 - an odd __eq__: say different, to be safe
        return False


# What the text binds, read from its tree


def _imported_names(node: ast.Import | ast.ImportFrom) -> set[str]:
    return {(a.asname or a.name).partition(".")[0] for a in node.names if a.name != "*"}


def _imports_star(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names) for n in ast.walk(tree))


def _bound_anywhere(tree: ast.Module) -> set[str]:
    """Every name the text may bind (more than the module level: never fewer)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, _DEFINITIONS):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= _imported_names(node)
    return bound


def _defined_and_kept(tree: ast.Module) -> set[str]:
    """Names a fresh import of the text surely leaves in the module: bound by statements that
    run at import (not in functions, classes, ``if`` branches or ``except`` handlers)."""
    defined: set[str] = set()
    deleted: set[str] = set()
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Delete):
            deleted |= _names_in(node.targets)
        else:
            defined |= _surely_bound_by(node)
            if isinstance(node, _BLOCKS):
                pending += node.body
    return defined - deleted


def _surely_bound_by(node: ast.stmt) -> set[str]:
    """The names a statement binds whenever it runs (a block: the names of its header)."""
    if isinstance(node, _DEFINITIONS):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return _imported_names(node)
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return _names_in(item.optional_vars for item in node.items if item.optional_vars is not None)
    if isinstance(node, ast.AnnAssign) and node.value is None:
        return set()  # ``X: int`` binds nothing
    return _names_in(assignment_targets(node))


def _names_in(targets: Iterable[ast.expr]) -> set[str]:
    return {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}


def _names_bound_by(statement: ast.stmt) -> set[str]:
    if isinstance(statement, _DEFINITIONS):
        return {statement.name}
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return _imported_names(statement)
    return {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}


def _attributes_set(tree: ast.Module) -> list[_AttributeSet]:
    """``Point.tag = 5`` at the top level of a text, with its value when an immutable literal."""
    found = []
    for node in tree.body:
        single = isinstance(node, ast.Assign) and len(node.targets) == 1
        if single or isinstance(node, ast.AnnAssign) and node.value is not None:
            where = attribute_of_name(assignment_targets(node)[0])
            if where is not None:
                assert isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None
                found.append(_AttributeSet(*where, _literal(node.value)))
    return found


def _literal(node: ast.expr) -> object:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNKNOWN
    return value if _immutable(value) else UNKNOWN


def _literal_assignments(tree: ast.Module) -> dict[str, object]:
    """``NAME = <literal>`` at the top level of a text: the values a fresh import starts with."""
    values: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = _literal(node.value)
            if value is not UNKNOWN:  # a list or dict the module fills as it runs proves nothing
                values[node.targets[0].id] = value
            else:
                values.pop(node.targets[0].id, None)
    return values


def _immutable(value: object) -> bool:
    if isinstance(value, (tuple, frozenset)):
        return all(_immutable(item) for item in value)
    return value is None or isinstance(value, (bool, int, float, complex, str, bytes))

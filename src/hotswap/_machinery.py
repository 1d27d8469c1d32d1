"""The reload machinery: the modules that apply a new text and make dependents follow.

Loading hotswap does not import them: ``%load_ext`` costs what IPython's
autoreload does. They are imported once there are modules to reload: by the
warm-up thread after a cell, while the user reads its output, or by whatever
needs them first on the thread that runs cells (a reload).

The warm-up thread imports them only when every module they import that is not
hotswap's own is imported already (``_OUTSIDE``), but for ``difflib``, whose own
imports are in it too: then it makes hotswap's modules, which no other code
imports, and ``difflib``, which waits for no other module while it is made. Its
imports cannot race the user's then (two threads importing modules that import
each other can be handed a half-made one); a thread that imports one of them
meanwhile waits until it is made.
"""

from __future__ import annotations

import sys

__all__ = ["load", "load_in_background", "loaded"]

_LAST = "hotswap._apply"  # imports every other one of them
# what the machinery imports from outside hotswap (tests/test_loading.py checks it is all of it)
_OUTSIDE = (
    "ast", "builtins", "collections", "collections.abc", "contextlib", "copy", "dataclasses", "enum",
    "functools", "heapq", "itertools", "operator", "re", "sys", "threading", "time", "types", "typing",
    "weakref",
)  # (and difflib: what it imports is here)


def loaded() -> bool:
    return _LAST in sys.modules


def load() -> None:
    """Import the machinery, once (a few ms, the first time only)."""
    if not loaded():
        from . import _aftercare, _apply, _follow, _leaves, _parse, _transaction  # noqa: F401


def load_in_background() -> bool:
    """``load``, from a thread other than the one that runs cells, when that is safe; ``True``
    once the machinery is imported."""
    if not loaded() and all(name in sys.modules for name in _OUTSIDE):
        load()
    return loaded()

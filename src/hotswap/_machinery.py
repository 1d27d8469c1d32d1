"""The reload machinery: the modules that apply a new text and make dependents follow.

Loading hotswap does not import them: a session that never reloads never pays
for them, and ``%load_ext`` costs what IPython's autoreload does. They are
imported, on the thread that runs cells, when first needed: by the first reload,
or after the first cell that imported modules taking names from others (the
warm-up prepares those, and never imports anything itself: an import on a
background thread can race the user's and hand one a half-made module).
"""

from __future__ import annotations

import sys

__all__ = ["load", "loaded"]

_LAST = "hotswap._apply"  # imports every other one of them


def loaded() -> bool:
    return _LAST in sys.modules


def load() -> None:
    """Import the machinery, once (a few ms, the first time only)."""
    if not loaded():
        from . import _aftercare, _apply, _follow, _leaves, _parse, _transaction  # noqa: F401

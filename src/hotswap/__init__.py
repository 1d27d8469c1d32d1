"""hotswap: keep a running IPython session in step with the code on disk.

Load it as a drop-in replacement for IPython's autoreload::

    %load_ext hotswap
    %autoreload 2

Before each cell, one pass of a one-way pipeline runs:

1. **detect** (``_watch``): which watched files have a new version (stat, then
   content hash); only the user's own modules are watched, from their import on.
2. **apply** (``_apply``): each changed module re-runs its new text in its own
   namespace after a snapshot; its ``class`` statements upgrade the classes the
   user already holds.
3. **upgrade** (``_upgrade``): old functions get the new code in place and are
   re-bound, so every reference held anywhere runs the new code.
4. **commit or roll back**: any failure restores the namespace and undoes every
   in-place write; the module stays exactly as it was.
5. **report** (``_report``, ``_ipython``): one plain message per module.

The engine (``Reloader``) does not need IPython; ``_ipython`` is the thin glue.
"""

from __future__ import annotations

import logging
from typing import Any

from ._outcomes import Failure, Reloaded
from ._reloader import Mode, Outcome, Reloader
from ._repl import enable, errors, status

__all__ = [
    "Failure",
    "Mode",
    "Outcome",
    "Reloaded",
    "Reloader",
    "enable",
    "errors",
    "load_ipython_extension",
    "status",
    "unload_ipython_extension",
]

__version__ = "0.1.0"

# A library never configures logging; this only stops Python's last-resort
# handler from printing our warnings a second time.
logging.getLogger("hotswap").addHandler(logging.NullHandler())


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext hotswap``: install the magics and the cell hooks (reloading starts off)."""
    from ._ipython import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext hotswap``: remove every hook and magic hotswap installed."""
    from ._ipython import unload

    unload(ipython)

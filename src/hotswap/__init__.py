"""hotswap: keep a running IPython session in step with the code on disk.

Load it as a drop-in replacement for IPython's autoreload::

    %load_ext hotswap
    %autoreload 2

Before each cell, one pass of a one-way pipeline runs; its modules, in the order
an edit goes through them:

1. **detect** (``_events``, ``_watch``, ``_userfiles``, ``_source``): the kernel's file events say
   which folders changed; the watchlist reads which watched files have a new
   version (stat, then a hash of the bytes). Only the user's own modules are
   watched, from their import on (``_adopt``: those imported before loading).
2. **which modules** (``_reloader``): what this mode reloads (``%autoreload``,
   ``%aimport``) is handed to the reload step (``_engine``, ``_jobs``), which takes them
   dependencies first (``_graph``: who imports what from whom).
3. **what changed** (``_parse``, ``_scan``, ``_diff``): old and new text, parsed
   (incrementally), each statement's names read and bound; the plan, a value.
4. **apply or roll back** (``_transaction``, ``_apply``): the plan runs in the
   module's own namespace after a snapshot; any failure restores it exactly.
5. **upgrade** (``_upgrade``, ``_undo``, ``_closures``, ``_aftercare``,
   ``_libraries``, ``_tombstones``): old functions and classes get the new code in
   place, every write kept in an undo log; closures made by old code take the new
   code or are made again; caches, registries and tracebacks follow; what libraries
   derived from a kept class (ABC caches, protocol members, pydantic validators) is
   made again, one small rebuild per library; what a save removed is kept for a
   save that brings it back.
6. **dependents follow** (``_dependents``, ``_follow``, ``_leaves``): names that
   changed are re-bound where they were imported, and what reads them re-runs.
7. **workers** (``_journal``, ``_pools``, ``_join``, ``_workers``, ``_dask``,
   ``_dask_worker``): the
   texts that ran go to worker processes, which run the same reload step (``_engine``).
8. **report** (``_report``, ``_status``, ``_frontend``, ``_ipython``, ``_repl``):
   one plain message per module.

Every step uses the words of ``_vocab`` (sentinels, name tests, type sets), and keeps its
caches in ``_bounded.SizedCache`` (bounded by bytes and count).

The engine (``Reloader``) does not need IPython; ``_ipython`` is the thin glue.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # (not ``typing``'s: a worker imports this package, and need not import ``typing``)
if TYPE_CHECKING:
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


# Imported when first used: a worker process imports ``hotswap`` to join the session, and must
# start as fast as one without it (see ``_join``).
_LAZY = {
    "Failure": "._outcomes",
    "Reloaded": "._outcomes",
    "Mode": "._reloader",
    "Outcome": "._reloader",
    "Reloader": "._reloader",
    "enable": "._repl",
    "errors": "._repl",
    "status": "._repl",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hotswap' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext hotswap``: install the magics and the cell hooks (reloading starts off)."""
    from ._ipython import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext hotswap``: remove every hook and magic hotswap installed."""
    from ._ipython import unload

    unload(ipython)

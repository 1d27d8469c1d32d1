"""Dask distributed: every live client's workers follow the session, on any machine.

Imported only when the user's session has ``distributed`` loaded. Workers on
other machines do not share the session's files: the texts themselves travel,
inside a worker plugin registered (under one name, so a new registration
replaces the old) on every live client after each reload and on clients made
since. Workers that join later (``cluster.scale``, restarts) get the plugin,
so they start from the current versions; modules they import later come from
those texts too.

Known limit: a Dask worker runs tasks in threads; a version arrives between
two of a thread's tasks, but another thread's task may be running.
"""

from __future__ import annotations

import sys
from typing import Any

from distributed import WorkerPlugin

from ._report import describe_failure
from ._watch import Watchlist
from ._workers import apply_versions

__all__ = ["HotswapPlugin", "follow_clients"]

PLUGIN_NAME = "hotswap"


class HotswapPlugin(WorkerPlugin):
    """On a worker: apply the session's versions, and import later modules from them too."""

    def __init__(self, generation: int, modules: dict[str, dict[str, str]]) -> None:
        self.generation = generation
        self.modules = modules

    def setup(self, worker: Any) -> None:
        watchlist = _worker_watchlist()
        texts = {entry["path"]: entry["text"].encode("utf-8") for entry in self.modules.values()}
        watchlist.overrides = lambda: texts
        failures = apply_versions(self.modules, watchlist)
        if failures:
            raise RuntimeError("\n".join(describe_failure(failure) for failure, _ in failures))


_watchlist: Watchlist | None = None


def _worker_watchlist() -> Watchlist:
    global _watchlist
    if _watchlist is None:
        _watchlist = Watchlist(events=False)
        _watchlist.start()
    return _watchlist


_registered: dict[int, int] = {}  # id(client) -> generation its workers have


def follow_clients(generation: int, modules: dict[str, dict[str, str]]) -> list[str]:
    """Register the current versions on every live client that lacks them; returns problems to say."""
    clients = getattr(sys.modules.get("distributed.client"), "_global_clients", None)
    problems: list[str] = []
    if not clients or not modules:
        return problems
    for client in list(clients.values()):
        if _registered.get(id(client)) == generation or getattr(client, "status", "") != "running":
            continue
        _registered[id(client)] = generation
        try:
            replies = client.register_plugin(HotswapPlugin(generation, modules), name=PLUGIN_NAME)
        except Exception as error:  # noqa: BLE001 - the session must not fail for a cluster
            problems.append(f"hotswap: could not send the new versions to Dask workers: {error}")
            continue
        for address, reply in (replies or {}).items():
            if isinstance(reply, dict) and reply.get("status") == "error":
                problems.append(f"hotswap: Dask worker {address}: {reply.get('exception')}")
    return problems

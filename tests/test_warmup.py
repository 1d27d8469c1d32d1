"""Warm-up: after a cell that imported modules, how they will follow is worked out in the background."""

from __future__ import annotations

import os
import threading
import time

import pytest

import hotswap._ipython as hotswap_ipython
from hotswap._warmup import WarmUp


def _settled(warm_up: WarmUp, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while warm_up.pending or any(t.name == "hotswap-warm-up" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the warm-up did not finish"
        time.sleep(0.01)


def test_dependents_are_prepared_after_the_cell_that_imported_them(shell, modules, cell, prepared):
    core, deps = modules.core_and_dependents(3)
    cell("%autoreload 2")
    cell("import " + ", ".join(deps))
    reloader = hotswap_ipython.session_of(shell).reloader
    prepared()

    prepared = [("K",) in reloader.watchlist.get(dep).running.memo for dep in deps]
    modules.write(core, "K = 5\n")
    assert prepared == [True, True, True]
    assert cell(f"[__import__(name).limit() for name in {deps!r}]") == [10, 10, 10]


def test_unloading_stops_the_warm_up(shell, modules, cell):
    core, dep = modules.named("core"), modules.named("dep")
    modules.write(core, "K = 1\n")
    modules.write(dep, f"from {core} import K\nLIMIT = K * 2\n")
    cell("%autoreload 2")
    cell(f"import {dep}")
    cell("%unload_ext hotswap")

    assert not [t for t in threading.enumerate() if t.name == "hotswap-warm-up"]


def _slow_warm_up(names: list[str]) -> tuple[WarmUp, list[str]]:
    prepared: list[str] = []

    def prepare(name: str) -> None:
        time.sleep(0.02)
        prepared.append(name)

    warm_up = WarmUp(prepare)
    for name in names:
        warm_up.add(name)
    warm_up.start()
    time.sleep(0.05)
    return warm_up, prepared


def test_stop_waits_for_the_module_in_hand_and_keeps_the_rest_pending():
    names = [f"m{i}" for i in range(20)]
    warm_up, prepared = _slow_warm_up(names)
    warm_up.stop()
    done = list(prepared)

    assert not [t for t in threading.enumerate() if t.name == "hotswap-warm-up"]
    assert 0 < len(done) < len(names) and warm_up.pending == len(names) - len(done)
    warm_up.start()
    _settled(warm_up)
    assert prepared == names


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_a_fork_pauses_the_warm_up_and_the_parent_finishes_it():
    """Stopped before ``fork()`` (the child gets no half-done thread), resumed after, in the
    parent: every module pending is prepared once."""
    names = [f"m{i}" for i in range(10)]
    warm_up, prepared = _slow_warm_up(names)
    pid = os.fork()
    if pid == 0:  # the child
        os._exit(0 if warm_up._thread is None else 1)
    _, status = os.waitpid(pid, 0)
    _settled(warm_up)

    assert os.waitstatus_to_exitcode(status) == 0
    assert prepared == names


def test_a_closed_warm_up_is_not_started_again_by_a_fork():
    names = [f"m{i}" for i in range(20)]
    warm_up, prepared = _slow_warm_up(names)
    warm_up.close()
    done = len(prepared)
    warm_up.start()
    if hasattr(os, "fork"):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    time.sleep(0.1)

    assert warm_up.pending == 0 and len(prepared) == done < len(names)
    assert not [t for t in threading.enumerate() if t.name == "hotswap-warm-up"]

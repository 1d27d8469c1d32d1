"""Other threads during a reload: what they may see of a module being re-applied (README,
"Other threads"), and that a reload neither starves them nor is starved by them."""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest

from hotswap import _transaction

# Both ways a module is re-applied: its changed statements only, or the whole text re-run
# (here: because a ``from __future__`` line comes and goes).
WAYS = pytest.mark.parametrize("whole", [False, True], ids=["statements", "whole"])


def _head(whole: bool, k: int) -> str:
    return "from __future__ import annotations\n" if whole and k % 2 else ""


@pytest.fixture
def expected_reload(monkeypatch):
    """What reloads took so far, as the transaction averages it: kept apart from other tests."""
    monkeypatch.setattr(_transaction, "_expected_reload", _transaction._expected_reload)


@WAYS
def test_a_thread_that_starts_waiting_during_a_reload_sees_the_whole_new_version(
    story, cell, modules, monkeypatch, expected_reload, whole
):
    """The thread wakes up while the new text runs (its statement sets an event the thread waits
    on) with 20 ms of work still ahead and ``B`` not yet re-assigned. With the interpreter's usual
    5 ms switch interval it would take its turn after ``A`` and before ``B``; the reload holds it
    off for about twice what reloads take here, so it reads ``(k, k)``."""
    woken = threading.Event()
    signal = types.ModuleType(modules.named("signal"))
    signal.reached = lambda k: woken.set() or k
    monkeypatch.setitem(sys.modules, signal.__name__, signal)

    def slow_version(k: int) -> str:  # reloads that take 0.2 s each (asleep: no work done)
        return _head(whole, k) + f"import time\nPAUSE = time.sleep(0.2) or {k}\nA = B = {k}\n\n\ndef f():\n    return (A, B)\n"

    def version(k: int) -> str:
        return _head(whole, k) + (
            f"import {signal.__name__}\nA = {k}\nREACHED = {signal.__name__}.reached({k})\n"
            f"WORK = sum(range(1_000_000)) * 0 + {k}\nB = {k}\n\n\ndef f():\n    return (A, B)\n"
        )

    edit = story(slow_version(1))
    for k in range(2, 5):  # what reloads take here, as the transaction learns it: ~0.15 s
        edit(slow_version(k))
        cell("pass")
    seen: list[object] = []

    def waiting_thread() -> None:
        woken.wait(30)
        seen.append(sys.modules[modules.name].f())

    thread = threading.Thread(target=waiting_thread, daemon=True)
    thread.start()
    edit(version(5))
    cell("pass")
    thread.join(30)

    assert woken.is_set() and cell("m.f()") == (5, 5)
    assert seen == [(5, 5)]


@WAYS
def test_a_thread_busy_in_the_module_sees_statements_re_applied_in_their_order(story, cell, modules, whole):
    """A thread reads the module in a loop while 30 edits are applied. It may get a turn in the
    middle of a reload (the known limit): then it sees the statements before it re-applied and
    those after it not yet (``A`` new, ``B`` old), or, while the whole text re-runs, names not
    defined yet. Never a value from no version, never new values before old ones."""

    def version(k: int) -> str:
        # f reads both values with no call in between: no thread switch can split it
        slow = f"SLOW = sum(range(300_000)) * 0 + {k}\n"  # a statement that re-runs for a while
        return _head(whole, k) + f"A = {k}\n{slow}B = {k}\n\n\ndef f():\n    return (A, B)\n"

    edit = story(version(1))
    module = sys.modules[modules.name]
    seen: set[object] = set()
    stop = threading.Event()

    def other_thread() -> None:  # a thread that works in short bursts (a server, a progress bar)
        while not stop.is_set():
            try:
                seen.add(module.f())
            except (AttributeError, NameError) as error:
                seen.add(type(error).__name__)
            time.sleep(0.0002)

    thread = threading.Thread(target=other_thread, daemon=True)
    thread.start()
    try:
        for k in range(2, 32):
            edit(version(k))
            cell("pass")
        deadline = time.monotonic() + 10
        while (31, 31) not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(10)

    assert cell("m.f()") == (31, 31)
    whole_versions = {(k, k) for k in range(1, 32)}
    mid_reload = {"AttributeError", "NameError"} if whole else {(k, k - 1) for k in range(2, 32)}
    assert (31, 31) in seen
    assert seen - whole_versions - mid_reload == set()


def test_a_reload_that_waits_gets_the_interpreter_back_from_a_busy_thread_soon(story, cell, expected_reload):
    """A statement a reload re-runs blocks a moment (I/O, a lock): a thread busy with Python code
    takes the interpreter then, and must give it back within a few reload times, not after 0.5 s."""

    def version(k: int) -> str:
        return f"import time\nX = time.sleep(0.001) or {k}\n\n\ndef f():\n    return X\n"

    edit = story(version(1))
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            sum(range(10_000))

    thread = threading.Thread(target=busy, daemon=True)
    thread.start()
    worst = 0.0
    try:
        for k in range(2, 8):
            edit(version(k))
            started = time.perf_counter()
            cell("pass")
            worst = max(worst, time.perf_counter() - started)
            assert cell("m.f()") == k
    finally:
        stop.set()
        thread.join(10)
    assert worst < 0.25, f"a cell after an edit took {worst:.3f} s"

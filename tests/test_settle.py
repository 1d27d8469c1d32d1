"""What an import derives (the module's lines pinned for tracebacks, its imports read into the
graph) is settled after the cell, on the warm-up thread, or by whoever needs it first: a cell
importing a thousand modules does not wait for it, and nothing reads a graph that lacks them."""

from __future__ import annotations

import codecs
import importlib.util
import linecache
import os
import sys
import threading
import time
import types

import pytest

import hotswap._ipython as hotswap_ipython
from hotswap._dependents import Dependents
from hotswap._source import SourceVersion, read_version, stat_signature
from hotswap._watch import Watchlist


def _pinned(path: str) -> bool:
    entry = linecache.cache.get(path)
    return entry is not None and len(entry) == 4 and entry[1] is None


@pytest.fixture
def later(tmp_path):
    """A watchlist that settles later (as the session's does), its graph, and three module files:
    ``a`` imports ``b``, ``b`` imports ``c``."""
    watchlist = Watchlist(events=False)
    watchlist.settle_later = True
    dependents = Dependents(watchlist)
    watchlist.on_record = dependents.read_imports
    files = {}
    for name, text in {"a": "from b import B\nA = B\n", "b": "from c import C\nB = C\n", "c": "C = 1\n"}.items():
        files[name] = tmp_path / f"{name}.py"
        files[name].write_text(text)
    yield watchlist, dependents, files
    for path in files.values():
        linecache.cache.pop(str(path), None)
    dependents.warm_up.close()


# -- the core: recorded now, settled later --------------------------------------------------------


def test_a_record_is_settled_only_when_asked(later):
    watchlist, dependents, files = later
    for name in "abc":
        watchlist.record(name, read_version(str(files[name])))

    assert watchlist.unsettled == 3
    assert not any(_pinned(str(path)) for path in files.values())
    assert "a" not in dependents._graph

    watchlist.settle()
    assert watchlist.unsettled == 0
    assert all(_pinned(str(path)) for path in files.values())
    assert [(e.source, e.name) for e in dependents._graph.edges_of("a")] == [("b", "B")]


def test_reading_the_graph_settles_every_module_first(later):
    watchlist, dependents, files = later
    for name in "abc":
        watchlist.record(name, read_version(str(files[name])))

    assert dependents.graph.order(["a", "c", "b"]) == ["c", "b", "a"]
    assert watchlist.unsettled == 0 and _pinned(str(files["a"]))


def test_a_module_forgotten_before_it_settled_is_not_read(later):
    watchlist, dependents, files = later
    watchlist.record("a", read_version(str(files["a"])))
    watchlist._forget("a")

    assert watchlist.unsettled == 0
    assert "a" not in dependents.graph and not _pinned(str(files["a"]))


def test_a_module_recorded_again_is_settled_with_its_latest_text(later, tmp_path):
    watchlist, dependents, files = later
    watchlist.record("a", read_version(str(files["a"])))
    files["a"].write_text("from c import C\nA = C\n")
    watchlist.record("a", read_version(str(files["a"])))

    assert watchlist.unsettled == 2  # (two imports of it)
    assert [(e.source, e.name) for e in dependents.graph.edges_of("a")] == [("c", "C")]
    assert linecache.getline(str(files["a"]), 1) == "from c import C\n"


def test_the_thread_that_settles_never_waits_for_a_reload_holding_the_lock(later):
    """A reload holds the lock for its whole pass; the warm-up thread asks ``until`` while it
    waits, so stopping it (before a fork the reload makes, say) never deadlocks."""
    watchlist, dependents, files = later
    watchlist.record("a", read_version(str(files["a"])))
    stop = threading.Event()
    with watchlist.lock:
        thread = threading.Thread(target=watchlist.settle, kwargs={"until": stop.is_set})
        thread.start()
        time.sleep(0.1)
        stop.set()
        thread.join(timeout=5)
        assert not thread.is_alive()
        assert watchlist.unsettled == 1  # nothing was read while the reload held the lock
    watchlist.settle()
    assert "a" in dependents._graph


def test_a_pin_lost_to_a_reader_of_the_file_is_made_again_at_the_next_check(later):
    """``linecache`` reading the file for a traceback while the warm-up thread pins it writes its
    entry last: the next check pins the text that runs again (before a broken save is read)."""
    watchlist, dependents, files = later
    path = str(files["a"])
    watchlist.record("a", read_version(path))
    watchlist.settle(until=lambda: False)  # as the warm-up thread does
    linecache.cache.pop(path)
    linecache.getlines(path)  # the reader's entry, read from the file, written after the pin
    files["a"].write_text("broken(\n")

    assert not _pinned(path)
    watchlist.poll(lambda name: True)
    assert _pinned(path) and linecache.getline(path, 1) == "from b import B\n"


def test_settling_at_once_from_now_on_records_each_pending_module_once(later):
    """A forked worker stops settling later: what is pending is settled first. (Switched the
    other way round, recording a module that imports another re-entered the queue it was taking
    from: a RecursionError, and modules dropped.)"""
    watchlist, dependents, files = later
    for name in "abc":
        watchlist.record(name, read_version(str(files[name])))
    watchlist.settle_at_once()

    assert watchlist.unsettled == 0 and watchlist.names() == ["a", "b", "c"]
    assert [(e.source, e.name) for e in dependents.graph.edges_of("a")] == [("b", "B")]
    watchlist.record("a", read_version(str(files["a"])))  # from now on: at once
    assert watchlist.unsettled == 0 and [w.name for w in map(watchlist.get, "abc")] == ["a", "b", "c"]


def test_recording_a_module_never_takes_the_queue_it_is_taken_from(later):
    watchlist, dependents, files = later
    for name in "abc":
        watchlist.record(name, read_version(str(files[name])))
    watchlist.settle_later = False  # (what settle_at_once guards against, taken directly)
    watchlist.settle()

    assert watchlist.unsettled == 0 and sorted(watchlist.names()) == ["a", "b", "c"]
    assert [(e.source, e.name) for e in dependents.graph.edges_of("b")] == [("c", "C")]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_a_child_forked_while_another_thread_holds_the_lock_gets_its_own(later):
    watchlist, _, _ = later
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with watchlist.lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        pid = os.fork()
        if pid == 0:  # the child: the holder is not here
            os._exit(0 if watchlist.lock.acquire(timeout=2) else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        holder.join()
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_warm_up_thread_settles_then_prepares(later):
    watchlist, dependents, files = later
    for name in "abc":
        watchlist.record(name, read_version(str(files[name])))
    dependents.warm_up.start()
    deadline = time.monotonic() + 10
    while dependents.warm_up.busy:
        assert time.monotonic() < deadline, "the warm-up did not finish"
        time.sleep(0.01)

    assert watchlist.unsettled == 0 and all(_pinned(str(path)) for path in files.values())
    assert "b" in dependents._sources_parsed  # a's source prepared, after a was read


def test_a_watchlist_that_does_not_settle_later_settles_at_once(tmp_path):
    """Workers (and anything that never runs a cell) keep the plain behaviour."""
    path = tmp_path / "m.py"
    path.write_text("from x import y\n")
    watchlist, told = Watchlist(events=False), []
    watchlist.on_record = lambda watched: told.append(watched.name)
    try:
        watchlist.record("m", read_version(str(path)))
        assert watchlist.unsettled == 0 and told == ["m"] and _pinned(str(path))
    finally:
        linecache.cache.pop(str(path), None)


# -- in the session -------------------------------------------------------------------------------


@pytest.fixture
def no_warm_up(shell):
    """The session's warm-up closed: nothing is settled in the background, so what the test
    sees is what the cell itself did, and what reading the graph does."""
    reloader = hotswap_ipython.session_of(shell).reloader
    reloader.warm_up.close()
    return reloader


def test_the_cell_that_imports_leaves_the_settling_to_after_it(shell, modules, cell, no_warm_up):
    names = [modules.named(f"m{i}") for i in range(5)]
    for name in names:
        modules.write(name, "X = 1\n")
    cell("%autoreload 2")
    cell("import " + ", ".join(names))
    cell(f"from {names[0]} import X")  # a namespace's import: read without settling the modules

    assert no_warm_up.watchlist.unsettled == len(names)
    assert not any(_pinned(str(modules.path(name))) for name in names)
    no_warm_up.graph  # noqa: B018 - reading it settles them
    assert no_warm_up.watchlist.unsettled == 0
    assert all(_pinned(str(modules.path(name))) for name in names)


def test_an_edit_right_after_the_imports_reaches_every_dependent(shell, modules, cell, no_warm_up):
    core, deps = modules.core_and_dependents(20)
    cell("%autoreload 2")
    cell("import " + ", ".join(deps))
    modules.write(core, "K = 5\n")

    assert cell(f"[__import__(name).limit() for name in {deps!r}]") == [10] * len(deps)


def test_a_broken_save_right_after_the_import_keeps_the_running_lines(shell, modules, cell, no_warm_up):
    name = modules.named("lines")
    modules.write(name, "def f():\n    return 1 / 0\n")
    cell("%autoreload 2")
    cell(f"import {name}")
    modules.write(name, "# a new first line\n\ndef f(:\n    return 1 / 0\n")
    shell.run_cell(f"{name}.f()")

    path = str(modules.path(name))
    assert _pinned(path) and linecache.getline(path, 2) == "    return 1 / 0\n"


# -- decoding the bytes read ----------------------------------------------------------------------


def _saved_during_the_read(monkeypatch, path, new_text):
    """The file is saved in place (same size) between the ``fstat`` and the ``read`` of its first read."""
    real_read, saved = os.read, []

    def read(descriptor, size):
        if not saved:
            saved.append(True)
            path.write_bytes(new_text)
        return real_read(descriptor, size)

    monkeypatch.setattr(os, "read", read)


def _saved_a_while_ago(tmp_path):
    path = tmp_path / "m.py"
    path.write_bytes(b"X = 1\n")
    os.utime(path, ns=(time.time_ns() - 10**10,) * 2)  # (a save now changes its mtime, whatever the clock's tick)
    return path


def test_a_save_during_a_read_is_read_again_before_a_version_is_made(tmp_path, monkeypatch):
    path = _saved_a_while_ago(tmp_path)
    _saved_during_the_read(monkeypatch, path, b"X = 2\n")

    version = read_version(str(path))

    assert version.data == b"X = 2\n"
    assert version.signature == stat_signature(os.stat(path))


def test_an_imports_read_runs_what_it_read_and_the_next_check_reads_again(tmp_path, monkeypatch):
    path = _saved_a_while_ago(tmp_path)
    before = stat_signature(os.stat(path))
    _saved_during_the_read(monkeypatch, path, b"X = 2\n")

    version = read_version(str(path), until_unchanged=False)

    assert version.data == b"X = 2\n"
    assert version.signature == before != stat_signature(os.stat(path)), "a signature newer than its bytes"


@pytest.mark.parametrize(
    "data",
    [
        b"x = 1\n",
        b"x = 'caf\xc3\xa9'\n",
        b"x = 1\r\ny = 2\r\n",
        b"x = 1\ry = 2\r",
        codecs.BOM_UTF8 + b"x = 'caf\xc3\xa9'\n",
        b"# -*- coding: latin-1 -*-\nx = 'caf\xe9'\n",
        b"#!/usr/bin/env python\n# coding: latin-1\nx = 'caf\xe9'\n",
        b"#!/usr/bin/env python\n# vim: set fileencoding=cp1252 :\nx = '\x80'\n",
        b"# coding: latin-1\nx = 'caf\xc3\xa9'\n",  # valid UTF-8, declared latin-1: latin-1 it is
        b"",
        b"no newline at the end",
    ],
)
def test_a_text_is_decoded_exactly_as_the_import_system_does(data):
    version = SourceVersion("m.py", data, (0, 0, 0, 0), 0)

    assert version.text == importlib.util.decode_source(data)


def test_bytes_that_are_not_text_are_said_as_the_import_system_would():
    data = b"x = '\xff'\n"
    version = SourceVersion("m.py", data, (0, 0, 0, 0), 0)

    with pytest.raises(SyntaxError, match="not valid UTF-8"):
        version.text  # noqa: B018


# -- a check between an import on another thread and its record ------------------------------------


@pytest.fixture
def watching(tmp_path, monkeypatch):
    """A started watchlist that settles later, with file-system events, and a module of its folder
    (``seen``) already recorded and settled: the folder is watched."""
    watchlist = Watchlist(events=True)
    watchlist.settle_later = True
    watchlist.start()
    if watchlist._events is None:
        pytest.skip("no file-system events here")
    seen = tmp_path / "race_seen.py"
    seen.write_text("X = 0\n")
    monkeypatch.setitem(sys.modules, "race_seen", types.ModuleType("race_seen"))
    watchlist.record("race_seen", read_version(str(seen)))
    watchlist.poll(lambda name: True)
    yield watchlist
    watchlist.stop()


def test_a_save_whose_event_a_check_took_before_the_import_was_recorded_is_seen(watching, tmp_path, monkeypatch):
    path = tmp_path / "race_late.py"
    path.write_text("X = 1\n")
    monkeypatch.setitem(sys.modules, "race_late", types.ModuleType("race_late"))
    took_the_records = watching._current

    def then_another_thread_imports_and_the_file_is_saved():
        took_the_records()
        watching.record("race_late", read_version(str(path)))
        path.write_text("X = 2\n")

    monkeypatch.setattr(watching, "_current", then_another_thread_imports_and_the_file_is_saved)
    assert watching.poll(lambda name: True) == []  # (its event taken: the module was not in the index)
    monkeypatch.setattr(watching, "_current", took_the_records)

    changes = watching.poll(lambda name: True)

    assert [(change.watched.name, change.version.data) for change in changes] == [("race_late", b"X = 2\n")]


def test_folders_watched_by_an_importing_thread_while_checks_drain_are_all_watched(tmp_path):
    """A thread watching new folders (its imports) while the checks drain events of folders going
    away: neither breaks the other, and every folder still there is watched at the end."""
    from hotswap._events import open_inotify

    events = open_inotify()
    if events is None:
        pytest.skip("no file-system events here")
    going = [tmp_path / f"going{i}" for i in range(200)]
    for folder in going:
        folder.mkdir()
        events.watch(str(folder))
    kept, failures, done = [], [], threading.Event()

    def importing_thread():
        try:
            while not done.is_set():
                folder = tmp_path / f"kept{len(kept)}"
                folder.mkdir()
                events.watch(str(folder))
                kept.append(folder)
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    thread = threading.Thread(target=importing_thread)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # (the threads take turns as often as the interpreter lets them)
    try:
        thread.start()
        for folder in going:
            folder.rmdir()
            events.drain()
        done.set()
        thread.join()
        events.drain()

        assert failures == []
        assert kept and all(events.watched_before(str(folder), time.time_ns()) for folder in kept)
    finally:
        done.set()
        sys.setswitchinterval(interval)
        events.close()

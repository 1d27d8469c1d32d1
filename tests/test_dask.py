"""Dask: every live client's workers follow the session, between tasks, on any machine."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

DASK_LIBRARY = """
import time

def version():
    return "VERSION"

def slow(seconds):
    first = version()
    time.sleep(seconds)
    return first, version()

def delegate(seconds):
    from distributed import worker_client

    with worker_client() as client:  # this task secedes: it waits for the one it sends
        time.sleep(seconds)
        return client.submit(version, pure=False).result()
"""


@pytest.fixture
def dask_library(shell, modules, cell):
    pytest.importorskip("distributed", reason="dask[distributed] is in the test extra; not installed here")

    def save(version: str) -> None:
        modules.write(modules.name, DASK_LIBRARY.replace("VERSION", version))

    save("v1")
    cell("__spec__ = None")  # what a fresh IPython has (Dask's nannies spawn, and read it)
    cell("%autoreload 2")
    cell(f"import os, sys, time, {modules.name} as lib")
    return save


@contextlib.contextmanager
def local_cluster(cell: Callable[[str], Any], workers: int = 1, threads: int = 1) -> Iterator[None]:
    """``cluster`` and ``client`` in the test's shell for the block: a real scheduler and workers."""
    cell(
        "from distributed import Client, LocalCluster\n"
        f"cluster = LocalCluster(n_workers={workers}, threads_per_worker={threads}, processes=True, "
        "dashboard_address=None)\n"
        "client = Client(cluster)"
    )
    try:
        yield
    finally:
        cell("client.close(); cluster.close()")


def test_dask_workers_get_hotswap_when_the_client_appears_not_at_the_first_save(dask_library, cell):
    with local_cluster(cell, workers=2):
        cell("1")  # the next cell: the plugin goes out, in the background
        joined = cell(
            "_deadline = time.monotonic() + 60\n"
            "while not all(client.run(lambda: 'hotswap._dask_worker' in sys.modules).values()) "
            "and time.monotonic() < _deadline:\n"
            "    time.sleep(0.05)\n"
            "all(client.run(lambda: 'hotswap._dask_worker' in sys.modules).values())"
        )
        assert joined, "no save yet: the workers should have hotswap already"
        dask_library("v2")
        assert set(cell("client.gather(client.map(lambda i: lib.version(), range(8), pure=False))")) == {"v2"}


def test_a_threaded_dask_worker_applies_an_edit_between_tasks_never_during_one(dask_library, cell):
    with local_cluster(cell, threads=2):
        assert cell("client.submit(lib.slow, 0, pure=False).result()") == ("v1", "v1")
        cell("running = client.submit(lib.slow, 2.0, pure=False); time.sleep(0.5)")  # in one thread
        dask_library("v2")
        cell("later = client.submit(lib.slow, 0, pure=False)")  # the other thread is free
        assert cell("later.result()") == ("v2", "v2")  # sent after the edit: new code
        assert cell("running.result()") == ("v1", "v1")  # running during the edit: its code throughout
        assert set(cell("client.gather(client.map(lambda i: lib.version(), range(8), pure=False))")) == {"v2"}


def test_a_dask_task_waiting_for_another_does_not_hold_an_edit_back(dask_library, cell):
    """A task that seceded (``worker_client``) waits for tasks it sends: they must not wait for it."""
    with local_cluster(cell):
        assert cell("client.submit(lib.version, pure=False).result()") == "v1"
        cell("waiting = client.submit(lib.delegate, 1.5, pure=False); time.sleep(0.5)")
        dask_library("v2")
        cell("1")  # the edit is applied: the seceded task does not hold it back
        assert cell("waiting.result(timeout=30)") == "v2"  # the task it sent runs the new code


# -- sessions in processes of their own, on one cluster --------------------------------------

DRIVER = Path(__file__).with_name("dask_session.py")


class Session:
    """A hotswap session in its own process (``dask_session.py``), driven cell by cell."""

    def __init__(self, path: list[Path], log: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([*map(str, path), *sys.path])
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True, env=env,
        )
        self.answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.said = ""  # all the session printed on stderr

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.answers.put(line)

    def cell(self, source: str, timeout: float = 60) -> Any:
        """Run a cell; it must succeed; its value."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(source) + "\n")
        self.process.stdin.flush()
        try:
            answer = json.loads(self.answers.get(timeout=timeout))
        except queue.Empty:
            raise AssertionError(f"no answer to {source!r} in {timeout} s; {self.log.name}") from None
        self.said += answer["stderr"]
        assert answer["error"] is None, (source, answer)
        return answer["value"]

    def wait_to_hear(self, words: str) -> None:
        """Run empty cells until the session said ``words`` (workers answer in the background)."""
        deadline = time.monotonic() + 30
        while words not in self.said and time.monotonic() < deadline:
            self.cell("1")
            time.sleep(0.05)
        assert words in self.said, self.said

    def end(self, timeout: float = 60) -> int:
        """End the session as a user does (end of input: the process exits normally)."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the session did not end in {timeout} s") from None
        self.log.close()
        return self.process.returncode


@pytest.fixture
def cluster(modules, monkeypatch):
    """A cluster of two worker processes (they import the test's modules), and a client of the test."""
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is in the test extra")
    # the nannies spawn, and read __main__.__spec__ (another test's %reset may have removed it)
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None, raising=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


@pytest.fixture
def sessions(tmp_path):
    """``start(*path)``: a session in its own process, with ``path`` first on its sys.path."""
    started: list[Session] = []

    def start(*path: Path) -> Session:
        session = Session(list(path), tmp_path / f"session-{len(started)}.log")
        started.append(session)
        return session

    yield start
    for session in started:
        session.end()
    for session in started:
        log = Path(session.log.name).read_text()
        assert "internal error" not in session.said + log, session.said + log


def _connect(session: Session, client: Any, *names: str) -> None:
    imports = ", ".join(f"{name} as {label}" for name, label in zip(names, ("lib", "other")))
    session.cell(f"import {imports}\nfrom distributed import Client\nclient = Client({client.scheduler.address!r})")


def _versions(session: Session) -> set[str]:
    """What the session's tasks, and every worker, run of ``lib.version``."""
    tasks = session.cell("client.gather(client.map(lambda i: lib.version(), range(8), pure=False))")
    every = session.cell("list(client.run(lib.version).values())")
    return set(tasks) | set(every)


def test_two_sessions_on_one_cluster_each_follow_their_own_edits(cluster, sessions, modules):
    """Each session's tasks run its latest versions, however the edits of the two alternate."""
    a, b = modules.named("a"), modules.named("b")
    for name in (a, b):
        modules.write(name, "def version():\n    return 'v1'\n")
    first, second = sessions(modules.root), sessions(modules.root)
    _connect(first, cluster, a)
    _connect(second, cluster, b)
    assert _versions(first) == _versions(second) == {"v1"}
    for version in ("v2", "v3", "v4"):
        modules.write(a, f"def version():\n    return {version!r}\n")
        assert _versions(first) == {version}
        modules.write(b, f"def version():\n    return {version + 'b'!r}\n")
        assert _versions(second) == {version + "b"}
        assert _versions(first) == {version}
    assert "hotswap" not in first.said + second.said, first.said + second.said


def test_a_module_two_sessions_edit_with_different_texts_keeps_the_first_and_tells_the_second(
    cluster, sessions, modules
):
    """Workers run one text of a module: the session that sent it first keeps it; the other is told,
    naming the module and the worker, and never changes what the first one's tasks run."""
    shared = modules.named("shared")
    modules.write(shared, "def version():\n    return 'a1'\n")  # on the workers' path and the first's
    elsewhere = modules.root / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / f"{shared}.py").write_text("def version():\n    return 'b1'\n")  # the second's own
    first, second = sessions(modules.root), sessions(elsewhere, modules.root)
    _connect(first, cluster, shared)
    _connect(second, cluster, shared)
    assert second.cell("lib.__file__") == str(elsewhere / f"{shared}.py")
    assert _versions(first) == {"a1"}

    modules.write(shared, "def version():\n    return 'a2'\n")
    assert _versions(first) == {"a2"}
    (elsewhere / f"{shared}.py").write_text("def version():\n    return 'b2'\n")
    second.cell("lib.version()")
    second.wait_to_hear(f"{shared} not updated")
    for address in cluster.scheduler_info()["workers"]:
        assert f"Dask worker {address}: {shared} not updated" in second.said, second.said
    assert "keeps running that session's version" in second.said
    assert _versions(first) == {"a2"}
    assert "not updated" not in first.said, first.said


# -- the session leaves: unload, exit ---------------------------------------------------------

PLUGINS = "client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.worker_plugins))"


def _hotswap_plugins(client: Any) -> list[str]:
    plugins = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.worker_plugins))
    return [name for name in plugins if name.startswith("hotswap")]


def test_after_unload_workers_and_restarted_workers_import_from_disk(dask_library, cell, modules):
    """%unload_ext takes the session's plugin away: a module imported later, and every module after
    a restart, come from the file, not from the last text the session sent."""
    late = modules.named("late")
    modules.write(late, "def version():\n    return 'late1'\n")
    cell(f"import {late} as late")
    with local_cluster(cell, workers=2):
        dask_library("v2")
        modules.write(late, "def version():\n    return 'late2'\n")  # sent, not imported by workers yet
        assert set(cell("client.gather(client.map(lambda i: lib.version(), range(8), pure=False))")) == {"v2"}
        assert [name for name in cell(PLUGINS) if name.startswith("hotswap")]

        cell("%unload_ext hotswap")
        assert [name for name in cell(PLUGINS) if name.startswith("hotswap")] == []
        # (texts of another size: a plain import trusts __pycache__ on size and whole-second mtime)
        modules.write(late, "def version():\n    return 'late3 from disk'\n")
        assert set(cell("client.gather(client.map(lambda i: late.version(), range(8), pure=False))")) == {"late3 from disk"}
        dask_library("v3 from disk")
        cell("client.restart()")
        assert set(cell("client.gather(client.map(lambda i: lib.version(), range(8), pure=False))")) == {"v3 from disk"}


def test_a_session_that_ends_takes_its_plugin_away(cluster, sessions, modules):
    """A session that exits normally leaves no plugin: workers restarted later import from disk."""
    name = modules.named("ends")
    modules.write(name, "def version():\n    return 'v1'\n")
    session = sessions(modules.root)
    _connect(session, cluster, name)
    modules.write(name, "def version():\n    return 'v2'\n")
    assert _versions(session) == {"v2"}
    assert len(_hotswap_plugins(cluster)) == 1

    started = time.monotonic()
    assert session.end() == 0
    assert time.monotonic() - started < 15
    assert _hotswap_plugins(cluster) == []
    modules.write(name, "def version():\n    return 'v3 from disk'\n")  # (another size: see above)
    cluster.restart()
    assert set(cluster.run(lambda: __import__(name).version()).values()) == {"v3 from disk"}


def test_unloading_with_a_scheduler_that_does_not_answer_takes_bounded_time_and_says_so(
    dask_library, cell, capfd, monkeypatch
):
    import hotswap._dask

    with local_cluster(cell):
        dask_library("v2")
        assert cell("client.submit(lib.version, pure=False).result()") == "v2"
        monkeypatch.setattr(hotswap._dask, "LEAVE_SECONDS", 0.5, raising=False)
        cell("import threading; threading.Thread(target=client.run_on_scheduler, args=(time.sleep, 3)).start()")
        time.sleep(0.2)  # the scheduler sleeps: it answers nothing for 3 s
        capfd.readouterr()
        started = time.monotonic()
        cell("%unload_ext hotswap")
        assert time.monotonic() - started < 2
        err = capfd.readouterr().err
        assert "could not take this session's plugin away from the Dask scheduler tcp://" in err, err
        assert "no answer in 0.5 s" in err and "workers that restart start from them" in err, err


# -- clients come and go ----------------------------------------------------------------------


def _kept_of(client: Any) -> list[str]:
    """hotswap's books (module-level mappings of ``hotswap._dask``) that hold ``client``, or its id."""
    import hotswap._dask

    books = [(name, value) for name, value in vars(hotswap._dask).items() if isinstance(value, Mapping)]
    return [name for name, book in books if client in book or id(client) in book]


def test_a_closed_client_is_forgotten_and_a_new_one_followed(dask_library, cell):
    with local_cluster(cell):
        dask_library("v2")
        assert cell("client.submit(lib.version, pure=False).result()") == "v2"
        old = cell("client")
        assert _kept_of(old)
        cell("client.close(); client = Client(cluster)")
        cell("1")
        assert _kept_of(old) == []
        dask_library("v3")
        assert set(cell("client.gather(client.map(lambda i: lib.version(), range(4), pure=False))")) == {"v3"}


# -- the status -------------------------------------------------------------------------------


def test_the_status_says_which_version_each_clients_workers_run(dask_library, cell, shell, status_until):
    from hotswap._ipython import session_of

    with local_cluster(cell, workers=2):
        address = re.escape(cell("client.scheduler.address"))
        dask_library("v2")
        assert set(cell("client.gather(client.map(lambda i: lib.version(), range(8), pure=False))")) == {"v2"}
        journal = session_of(shell).reloader.journal
        v2 = journal.generation
        line = rf"\n  Dask {address}: 2 workers, 2 on version {v2} \(current\)"
        assert re.search(rf"workers:{line}", status_until(line))
        assert "<th>workers</th>" in cell("%hotswap")._repr_html_()

        cell("running = client.submit(lib.slow, 3, pure=False); time.sleep(0.3)")  # one worker is busy
        dask_library("v3")
        cell("1")
        v3 = journal.generation
        line = rf"Dask {address}: 2 workers, 1 on version {v3} \(current\), 1 on version {v2} \(waiting for running tasks\)"
        assert re.search(line, status_until(line))
        cell("running.result()")
        line = rf"Dask {address}: 2 workers, 2 on version {v3} \(current\)"
        assert re.search(line, status_until(line))
    assert "workers:" not in str(cell("%hotswap"))  # no live client: no line

"""The journal under faults: it belongs to the session's process, and what a session leaves is swept.

Each story runs in a new interpreter (a real shell with hotswap and a real pool):
forking the test process itself would run pytest's own exit handlers twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SESSION = """
import os, sys, time
sys.path.insert(0, {folder!r})
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
config = Config()
config.HistoryManager.enabled = False  # (its thread would not be there in a forked child)
shell = InteractiveShell.instance(config=config)

def cell(source):
    result = shell.run_cell(source)
    assert result.success, (source, result.error_in_exec or result.error_before_exec)
    return result.result

def save(version):
    with open({module_path!r}, "w") as file:
        file.write(f"def f(x):\\n    return {{version!r}}\\n")
    time.sleep(0.05)

save("v1")
cell("%load_ext hotswap")
cell("%autoreload 2")
cell("import multiprocessing as mp, {module} as lib")
journal = os.environ["HOTSWAP_JOURNAL"]

def workers_follow():
    cell("pool = mp.get_context('fork').Pool(1)")
    save("v2")
    print("workers run", cell("pool.apply(lib.f, (0,))"))
    cell("pool.terminate()")
"""


def run_session(tmp_path: Path, story: str) -> subprocess.CompletedProcess[str]:
    module = "journal_lib_" + tmp_path.name.replace("-", "_")
    path = tmp_path / f"{module}.py"
    script = SESSION.format(folder=str(tmp_path), module=module, module_path=str(path)) + textwrap.dedent(story)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def test_a_forked_child_that_exits_normally_leaves_the_journal_to_the_session(tmp_path):
    done = run_session(
        tmp_path,
        """
        child = os.fork()
        if child == 0:
            sys.exit(0)  # a normal exit: the interpreter's exit handlers run in the child
        os.waitpid(child, 0)
        print("journal kept", os.path.isdir(journal))
        workers_follow()
        """,
    )

    assert done.returncode == 0, done.stderr
    assert "journal kept True" in done.stdout
    assert "workers run v2" in done.stdout


def test_the_journal_goes_when_its_session_ends(tmp_path):
    done = run_session(tmp_path, "workers_follow()\nprint('journal', journal)\n")

    assert done.returncode == 0, done.stderr
    assert "workers run v2" in done.stdout
    journal = done.stdout.split("journal ", 1)[1].split()[0]
    assert not os.path.exists(journal)


def test_a_session_starting_sweeps_the_journals_of_sessions_that_are_gone(tmp_path):
    killed = subprocess.run(  # a session killed with kill -9: its exit handlers never ran
        [sys.executable, "-c", "import os, signal\n" + _make_journal + "print(folder, flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n"],
        capture_output=True, text=True, timeout=60,
    )
    left = killed.stdout.split()[0]
    assert os.path.isdir(left)
    alive = subprocess.Popen(
        [sys.executable, "-c", _make_journal + "print(folder, flush=True)\nimport sys; sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        living = alive.stdout.readline().split()[0]
        done = subprocess.run([sys.executable, "-c", _make_journal], capture_output=True, text=True, timeout=60)

        assert done.returncode == 0, done.stderr
        assert not os.path.exists(left), "the journal of a session that is gone stays"
        assert os.path.isdir(living), "the journal of a session still running was swept"
    finally:
        alive.communicate("", timeout=60)
    assert not os.path.exists(living)


_make_journal = "from hotswap._journal import Journal\nfolder = Journal().folder\n"



# -- in the test's shell: a journal that fails, what workers trust, what they leave ----------

LIBRARY = """
import os

def f(x):
    return ("VERSION", os.getpid())
"""


@pytest.fixture
def library(shell, modules, cell):
    """``lib`` on disk and imported, mode 2; ``save(version)`` edits it; the journal's folder."""

    def save(version: str) -> None:
        modules.write(modules.name, LIBRARY.replace("VERSION", version))

    save("v1")
    cell("__spec__ = None")  # what a fresh IPython has (spawn reads it)
    cell("%autoreload 2")
    cell(f"import json, multiprocessing as mp, os, {modules.name} as lib")
    return save


def journal_folder() -> Path:
    return Path(os.environ["HOTSWAP_JOURNAL"])


def said_later(cell, capfd, words: str) -> str:
    """What the cells after this one print, until ``words`` come (said at a following cell)."""
    err = ""
    for _ in range(100):
        cell("1")
        err += capfd.readouterr().err
        if words in err:
            break
        time.sleep(0.05)
    return err


def test_a_journal_that_cannot_be_written_is_said_once_and_retried_until_workers_catch_up(
    library, modules, cell, capfd
):
    other = modules.named("other")
    modules.write(other, "X = 1\n")
    cell(f"import {other}")
    library("v2")  # an edit before any pool: written when the first pool comes
    cell("1")
    blocker = journal_folder()
    shutil.rmtree(blocker)
    blocker.write_text("")  # nothing can be written there (as on a full or read-only disk)
    try:
        cell("pool = mp.get_context('fork').Pool(1)")  # the user's pool is made all the same
        assert cell("pool.apply(lib.f, (0,))[0]") == "v2"  # (forked from the session)
        err = capfd.readouterr().err
        assert "could not write the journal" in err and "keep the versions they run" in err, err
        library("v3")
        modules.write(other, "X = (\n")  # broken, saved at the same time
        cell("1")
        err = capfd.readouterr().err
        assert f"autoreload of {other} failed" in err and "SyntaxError" in err, err
        assert cell("lib.f(0)[0]") == "v3"
        assert cell("pool.apply(lib.f, (0,))[0]") == "v2"  # lags, and the user was told
        cell("1")
        assert "could not write the journal" not in err + capfd.readouterr().err  # said once
    finally:
        blocker.unlink()
    err = said_later(cell, capfd, "written again")
    assert "written again" in err, err
    assert cell("pool.apply(lib.f, (0,))[0]") == "v3"  # caught up once the journal works
    cell("pool.terminate(); pool.join()")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_follow_after_the_journal_folder_was_cleaned_away(library, cell, method):
    cell(f"pool = mp.get_context({method!r}).Pool(1)")
    try:
        assert cell("pool.apply(lib.f, (0,))[0]") == "v1"
        shutil.rmtree(journal_folder())  # a temporary-folder cleaner went by
        library("v2")
        assert cell("lib.f(0)[0]") == "v2"
        assert cell("pool.apply(lib.f, (0,))[0]") == "v2"  # the worker it had follows
        cell(f"later = mp.get_context({method!r}).Pool(1)")
        assert cell("later.apply(lib.f, (0,))[0]") == "v2"
        cell("later.terminate(); later.join()")
    finally:
        cell("pool.terminate(); pool.join()")


def test_workers_that_start_while_the_journal_is_gone_still_run_tasks_and_catch_up_later(library, cell):
    cell("pool = mp.get_context('spawn').Pool(1, maxtasksperchild=1)")  # a new worker per task
    try:
        assert cell("pool.apply(lib.f, (0,))[0]") == "v1"
        shutil.rmtree(journal_folder())
        assert cell("pool.apply_async(lib.f, (0,)).get(timeout=60)[0]") == "v1"  # a worker that could not join
        library("v2")
        assert cell("pool.apply_async(lib.f, (0,)).get(timeout=60)[0]") == "v2"
    finally:
        cell("pool.terminate(); pool.join()")


def test_a_worker_applies_only_the_sessions_own_modules_at_their_path_and_digest(library, shell, cell, capfd):
    from hotswap._ipython import session_of
    from hotswap._source import SourceVersion, digest_of

    class _Lying(SourceVersion):
        """A version whose digest is not its text's."""

        digest = digest_of(b"other bytes")

    cell("pool = mp.get_context('fork').Pool(1)")
    try:
        assert cell("pool.apply(json.dumps, (1,))") == "1"
        journal = session_of(shell).reloader.journal
        stdlib = b"def dumps(*args, **kwargs):\n    return 'not json'\n"
        elsewhere = LIBRARY.replace("VERSION", "elsewhere").encode()
        lib_path = cell("lib.__file__")
        lying = LIBRARY.replace("VERSION", "lying").encode()
        journal.publish({
            "json": SourceVersion(cell("json.__file__"), stdlib, (0, 0, 0, 0), 0),
            cell("lib.__name__"): SourceVersion(lib_path + ".elsewhere.py", elsewhere, (0, 0, 0, 0), 0),
        })
        assert cell("pool.apply(json.dumps, (1,))") == "1"
        assert cell("pool.apply(lib.f, (0,))[0]") == "v1"
        err = said_later(cell, capfd, "elsewhere")
        assert "json" in err and "not one of the session's modules" in err, err
        assert "elsewhere" in err and lib_path in err, err
        journal.publish({cell("lib.__name__"): _Lying(lib_path, lying, (0, 0, 0, 0), 0)})
        assert cell("pool.apply(lib.f, (0,))[0]") == "v1"
        err = said_later(cell, capfd, "digest")
        assert "does not match its digest" in err, err
    finally:
        cell("pool.terminate(); pool.join()")


def test_workers_that_end_take_their_mark_in_the_journal_with_them(library, cell):
    cell("pool = mp.get_context('fork').Pool(1, maxtasksperchild=1)")
    cell("[pool.apply(lib.f, (i,)) for i in range(12)]")
    cell("pool.close(); pool.join()")
    assert len(os.listdir(journal_folder() / "joined")) <= 1


INDEX_READS = """
import sys

def count_index_reads():
    def hook(event, args):
        if event == "open" and str(args[0]).endswith("index.json"):
            COUNT[0] += 1
    sys.addaudithook(hook)

COUNT = [0]

def import_all(names):
    import importlib
    for name in names:
        importlib.import_module(name)
    return COUNT[0]
"""


def test_a_spawned_worker_reads_the_journal_once_per_version_not_at_every_import(library, modules, cell):
    names = [modules.named(f"m{i}") for i in range(30)]
    for name in names:
        modules.write(name, "def g():\n    return 1\n")
    counter = modules.named("counter")
    modules.write(counter, INDEX_READS)
    cell(f"import {counter} as counter")
    library("v2")  # the journal holds a version
    cell("1")
    cell("pool = mp.get_context('spawn').Pool(1, initializer=counter.count_index_reads)")
    try:
        reads = cell(f"pool.apply(counter.import_all, ({names!r},))")
        assert reads <= 1, f"index.json read {reads} times for {len(names)} imports"
        assert cell("pool.apply(lib.f, (0,))[0]") == "v2"
    finally:
        cell("pool.terminate(); pool.join()")

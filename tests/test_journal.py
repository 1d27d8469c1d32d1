"""The journal under faults: it belongs to the session's process, and what a session leaves is swept.

Each story runs in a new interpreter (a real shell with hotswap and a real pool):
forking the test process itself would run pytest's own exit handlers twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

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


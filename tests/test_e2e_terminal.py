"""End to end: hotswap in a real terminal IPython, typed into through a pseudo-terminal.

Each test starts ``python -m IPython`` (the interpreter running the tests) under
``pexpect`` with a throwaway IPYTHONDIR, the test's directory on PYTHONPATH and
``TERM=dumb``; ``--simple-prompt`` keeps prompt_toolkit out, so what is read
back is plain text: the echoed line, whatever the cell printed, ``Out[N]: ...``.
Every session must end cleanly with ``exit()``, and no transcript may contain a
hotswap internal error.
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest

TIMEOUT = 30  # seconds, for every expect
PROMPT = re.compile(r"In \[(\d+)\]: ")


class Terminal:
    """One interactive IPython session in a pseudo-terminal."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child
        self.transcript = ""
        self._wait_for_prompt()

    def _wait_for_prompt(self) -> str:
        try:
            self.child.expect(PROMPT)
        except (pexpect.TIMEOUT, pexpect.EOF) as error:
            raise AssertionError(
                f"no IPython prompt ({type(error).__name__}); transcript so far:\n"
                f"{self.transcript}{self.child.before}"
            ) from None
        text: str = self.child.before.replace("\r\n", "\n")
        self.transcript += text + self.child.after
        return text

    def run(self, line: str) -> str:
        """Type one line, wait for the next prompt; return what was printed (without the echo)."""
        assert "\n" not in line
        self.child.sendline(line)
        output = self._wait_for_prompt()
        echo, _, rest = output.partition("\n")
        assert echo.strip() == line.strip(), f"unexpected echo {echo!r} of {line!r}"
        return rest.strip("\n")

    def exit(self) -> None:
        """``exit()``: IPython must end by itself, with status 0."""
        self.child.sendline("exit()")
        try:
            self.child.expect(pexpect.EOF)
        except pexpect.TIMEOUT:
            raise AssertionError(f"IPython did not exit; transcript:\n{self.transcript}") from None
        tail = self.child.before.replace("\r\n", "\n")
        self.transcript += tail
        self.child.close()
        assert tail.strip() == "exit()", f"output at exit: {tail!r}"
        assert self.child.exitstatus == 0, (self.child.exitstatus, self.child.signalstatus, self.transcript)


def out(value: str) -> re.Pattern[str]:
    """The ``Out[N]: value`` line of a cell's output."""
    return re.compile(rf"^Out\[\d+\]: {re.escape(value)}$", re.MULTILINE)


Start = Callable[[], Terminal]


@pytest.fixture
def ipython_dir(tmp_path: Path) -> Path:
    path = tmp_path / "ipython"
    path.mkdir()
    return path


@pytest.fixture
def start(tmp_path: Path, ipython_dir: Path) -> Iterator[Start]:
    """``start()`` launches IPython in a pseudo-terminal; every session is checked and closed."""
    sessions: list[Terminal] = []
    env = dict(os.environ)
    env["IPYTHONDIR"] = str(ipython_dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp_path), env.get("PYTHONPATH")) if p)
    env["TERM"] = "dumb"
    for name in ("PYTHONSTARTUP", "HOTSWAP_DEBUG"):
        env.pop(name, None)

    def launch() -> Terminal:
        child = pexpect.spawn(
            sys.executable,
            ["-m", "IPython", "--no-banner", "--colors=nocolor", "--simple-prompt"],
            env=env,
            cwd=str(tmp_path),
            encoding="utf-8",
            timeout=TIMEOUT,
            dimensions=(50, 500),
        )
        sessions.append(Terminal(child))
        return sessions[-1]

    try:
        yield launch
    finally:
        for session in sessions:
            if session.child.isalive():
                session.child.terminate(force=True)
    for session in sessions:
        assert "internal error" not in session.transcript, session.transcript


@pytest.fixture
def module(tmp_path: Path) -> tuple[str, Callable[[str], Path]]:
    """A fresh module name importable by the session, and ``write(text)`` to save its file."""
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    path = tmp_path / f"{name}.py"

    def write(text: str) -> Path:
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return name, write


V1 = """
    def f():
        return "f one"

    class Model:
        def predict(self):
            return "predict one"
"""

V2 = """
    def f():
        return "f two"

    class Model:
        def predict(self):
            return "predict two"

        def added(self):
            return "added"
"""


def test_an_edit_is_picked_up_by_the_next_line(start: Start, module: tuple[str, Callable[[str], Path]]) -> None:
    name, write = module
    write(V1)
    term = start()
    assert term.run("%load_ext hotswap") == ""
    assert term.run("%autoreload 2") == ""
    assert term.run(f"import {name}; from {name} import f, Model; m = Model(); OldModel = Model") == ""
    assert out("('f one', 'predict one')").search(term.run("f(), m.predict()"))

    write(V2)
    printed = term.run("f(), m.predict(), m.added()")
    assert out("('f two', 'predict two', 'added')").search(printed), printed
    assert "hotswap" not in printed, printed
    printed = term.run(f"isinstance(m, {name}.Model), {name}.Model is OldModel, {name}.f is f")
    assert out("(True, True, True)").search(printed), printed
    term.exit()


def test_a_broken_edit_is_reported_once_and_the_line_runs_the_old_code(
    start: Start, module: tuple[str, Callable[[str], Path]]
) -> None:
    name, write = module
    write(V1)
    term = start()
    term.run("%load_ext hotswap")
    term.run("%autoreload 2")
    term.run(f"from {name} import f")
    assert out("'f one'").search(term.run("f()"))

    path = write(V1 + "\n    def broken(:\n        pass\n")
    printed = term.run("f()")
    assert out("'f one'").search(printed), printed  # the line ran, with the last good code
    assert printed.count(f"hotswap: [autoreload of {name} failed:") == 1, printed
    assert "SyntaxError" in printed, printed
    assert f"{path}:8" in printed, printed
    assert "Traceback" not in printed, printed

    printed = term.run("f()")  # the same broken file is not reported again
    assert out("'f one'").search(printed) and "hotswap" not in printed, printed

    write(V2)
    printed = term.run("f()")
    assert out("'f two'").search(printed) and "hotswap" not in printed, printed
    term.exit()


def test_the_extension_loads_from_the_profile_config(
    start: Start, ipython_dir: Path, module: tuple[str, Callable[[str], Path]]
) -> None:
    profile = ipython_dir / "profile_default"
    profile.mkdir()
    (profile / "ipython_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["hotswap"]\n'
        'c.InteractiveShellApp.exec_lines = ["%autoreload 2"]\n'
    )
    name, write = module
    write(V1)
    term = start()  # no %load_ext typed
    assert "hotswap" not in term.transcript and "Error" not in term.transcript, term.transcript
    term.run(f"from {name} import f, Model; m = Model()")
    assert out("('f one', 'predict one')").search(term.run("f(), m.predict()"))

    write(V2)
    printed = term.run("f(), m.predict()")
    assert out("('f two', 'predict two')").search(printed), printed
    assert out("True").search(term.run("'hotswap' in get_ipython().extension_manager.loaded"))
    term.exit()

"""Other places users work: the plain Python REPL, traitlets options, the ``%hotswap`` status view."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pexpect
import pytest
from traitlets.config import Config

import hotswap._ipython as hotswap_ipython

PROMPT = ">>> "


def spawn_repl(folder: Path, *args: str) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    env["PYTHONPATH"] = os.pathsep.join([str(folder), env.get("PYTHONPATH", "")])
    env["TERM"] = "dumb"
    child = pexpect.spawn(sys.executable, list(args), cwd=str(folder), env=env, encoding="utf-8", timeout=30)
    child.expect_exact(PROMPT)
    return child


def send(child: pexpect.spawn, line: str) -> str:
    child.sendline(line)
    child.expect_exact(PROMPT)
    return str(child.before).replace("\r\n", "\n")


def write(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text))


def test_python_m_hotswap_applies_edits_between_statements(tmp_path):
    module = tmp_path / "repl_lib.py"
    write(module, "def f():\n    return 1\nclass C:\n    def m(self):\n        return 'old'\n")
    child = spawn_repl(tmp_path, "-m", "hotswap")
    try:
        assert "1" in send(child, "from repl_lib import f, C; c = C(); f()")
        write(module, "def f():\n    return 2\nclass C:\n    def m(self):\n        return 'new'\n")
        out = send(child, "f(), c.m()")
        assert "(2, 'new')" in out

        write(module, "def f(:\n    return 3\n")
        out = send(child, "f()")
        assert "[autoreload of repl_lib failed: SyntaxError" in out and f"{module}:1" in out
        assert "\n2\n" in out  # the statement ran, with the last good code
        assert "repl_lib: SyntaxError" in send(child, "import hotswap; hotswap.errors()")
        assert "waiting for a good save" in send(child, "hotswap.status()")
    finally:
        child.sendeof()
        child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_hotswap_enable_in_a_running_plain_repl(tmp_path):
    module = tmp_path / "repl_lib2.py"
    write(module, "K = 1\n")
    child = spawn_repl(tmp_path, "-i", "-c", "pass")
    try:
        send(child, "from repl_lib2 import K")
        child.sendline("import hotswap; hotswap.enable()")
        child.expect_exact("reloading is on")
        child.expect_exact(PROMPT)
        write(module, "K = 2\n")
        assert "\n2\n" in send(child, "K")  # a name taken with `from` follows too
    finally:
        child.sendeof()
        child.expect(pexpect.EOF)


def test_options_from_the_ipython_config(plain_shell, modules, cell):
    config = Config()
    config.Hotswap.mode = "all"
    config.Hotswap.print = True
    plain_shell.config.merge(config)
    try:
        modules.write(modules.name, "def f():\n    return 1\n")
        cell("%load_ext hotswap")
        session = hotswap_ipython.session_of(plain_shell)
        assert session is not None and session.reloader.mode.name == "ALL" and session.print_activity
        cell(f"from {modules.name} import f")
        modules.write(modules.name, "def f():\n    return 2\n")
        assert cell("f()") == 2  # no %autoreload typed: the configured mode is in force
    finally:
        plain_shell.config.pop("Hotswap", None)


def test_excluded_folders_are_not_watched_and_included_ones_are(plain_shell, modules, cell, tmp_path):
    config = Config()
    config.Hotswap.exclude_paths = [str(tmp_path)]
    plain_shell.config.merge(config)
    try:
        modules.write(modules.name, "X = 1\n")
        cell("%load_ext hotswap")
        cell(f"import {modules.name}")
        assert modules.name not in hotswap_ipython.session_of(plain_shell).reloader.watchlist
    finally:
        plain_shell.config.pop("Hotswap", None)

    hotswap = hotswap_ipython.Hotswap(include_paths=["/somewhere/site-packages/mine"])
    assert hotswap.is_user_file("/somewhere/site-packages/mine/lib.py")
    assert not hotswap.is_user_file("/somewhere/site-packages/other/lib.py")


def test_a_file_is_the_users_by_its_folder_or_by_where_its_link_leads(tmp_path):
    from hotswap._userfiles import is_user_file

    project, installed = tmp_path / "project", tmp_path / "lib" / "site-packages"
    project.mkdir()
    installed.mkdir(parents=True)
    (project / "mine.py").write_text("X = 1\n")
    (installed / "theirs.py").write_text("X = 2\n")
    (installed / "linked_in.py").symlink_to(project / "mine.py")  # ``flit install --symlink``
    (project / "vendored.py").symlink_to(installed / "theirs.py")  # a link the user put in their tree

    assert is_user_file(str(project / "mine.py"))
    assert is_user_file(str(installed / "linked_in.py"))
    assert is_user_file(str(project / "vendored.py"))
    assert not is_user_file(str(installed / "theirs.py"))
    assert not is_user_file(str(project / "mine.pyc"))


@pytest.mark.parametrize(
    "path", ["/a/b/c.py", "/c.py", "c.py", "a//b//c.py", "/a/b/", "//x.py", "a/b.py", "", "/", "./x.py", "a/"]
)
def test_the_folder_of_a_file_is_what_dirname_says(path):
    from hotswap._userfiles import folder_of

    assert folder_of(path) == os.path.dirname(path)


def test_status_lists_watched_modules_reloads_and_broken_modules_until_fixed(shell, modules, cell):
    modules.write(modules.name, "def f():\n    return 1\n")
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")
    modules.write(modules.name, "def f():\n    return 2\n")
    cell("f()")

    status = cell("%hotswap")
    text = str(status)
    assert "mode all" in text and "file-system events" in text
    assert f"reloaded {modules.name} (upgraded f)" in text
    assert "<table" in status._repr_html_() and modules.name in status._repr_html_()

    modules.write(modules.name, "def f():\n    return (2\n")
    cell("f()")
    text = str(cell("%hotswap"))
    assert "waiting for a good save" in text and f"{modules.path(modules.name)}:2" in text

    modules.write(modules.name, "def f():\n    return 3\n")
    cell("f()")
    assert "waiting for a good save" not in str(cell("%hotswap"))


@pytest.mark.parametrize("mode", ["bogus", "5"])
def test_a_bad_configured_mode_is_refused_clearly(mode):
    with pytest.raises(Exception, match="mode"):
        hotswap_ipython.Hotswap(mode=mode)

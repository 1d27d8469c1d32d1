"""A working tree's life: moved folders, links, checkouts.

Whatever happens to the folders and files around a module (a package folder
removed and recreated, moved away and back, a module that is a symlink, a
``git checkout`` of another branch and back, ``git stash`` and ``pop``), the
next cell runs what is on disk, and later edits keep being seen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest


def version(value: str) -> str:
    return f"def f():\n    return {value!r}\n"


def status(cell) -> str:
    return str(cell("%hotswap"))


def package(modules, label: str = "pkg") -> tuple[str, Path]:
    """A package ``<prefix>_pkg`` with one submodule ``sub`` (``f()`` -> "v1"); its folder."""
    pkg = modules.named(label)
    modules.write(pkg, "", package=True)
    modules.write(f"{pkg}.sub", version("v1"))
    return pkg, modules.root / pkg


# -- a package folder removed, moved, recreated ---------------------------------


def test_a_package_folder_removed_and_recreated_as_it_was_is_watched_again(shell, modules, cell):
    pkg, folder = package(modules)
    cell("%autoreload 2")
    cell(f"from {pkg}.sub import f")
    saved = modules.root / "saved"
    shutil.copytree(folder, saved)
    shutil.rmtree(folder)
    assert cell("f()") == "v1"  # gone: it keeps running its last version
    assert "deleted" in status(cell)

    shutil.copytree(saved, folder)  # back, as it was (new folder, new files)
    assert cell("f()") == "v1"
    assert "waiting for a good save" not in status(cell)  # no longer said deleted

    modules.write(f"{pkg}.sub", version("v2"))
    assert cell("f()") == "v2"


@pytest.mark.parametrize("cell_while_away", [True, False], ids=["a cell while away", "back before a cell"])
def test_a_package_folder_moved_away_and_back_is_watched_again(shell, modules, cell, cell_while_away):
    pkg, folder = package(modules)
    cell("%autoreload 2")
    cell(f"from {pkg}.sub import f")
    away = modules.root / "away"
    folder.rename(away)
    if cell_while_away:
        assert cell("f()") == "v1"
    away.rename(folder)
    assert cell("f()") == "v1"
    assert "waiting for a good save" not in status(cell)

    modules.write(f"{pkg}.sub", version("v2"))
    assert cell("f()") == "v2"


def test_a_folder_recreated_with_another_text_is_applied_as_a_save(shell, modules, cell):
    pkg, folder = package(modules)
    cell("%autoreload 2")
    cell(f"from {pkg}.sub import f")
    shutil.rmtree(folder)
    assert cell("f()") == "v1"

    modules.write(pkg, "", package=True)
    modules.write(f"{pkg}.sub", version("v2"))
    assert cell("f()") == "v2"
    assert "waiting for a good save" not in status(cell)
    modules.write(f"{pkg}.sub", version("v3"))
    assert cell("f()") == "v3"


def test_nested_folders_recreated_one_level_at_a_time(shell, modules, cell):
    pkg, folder = package(modules)
    inner = f"{pkg}.inner"
    modules.write(inner, "", package=True)
    modules.write(f"{inner}.leaf", version("v1"))
    cell("%autoreload 2")
    cell(f"from {inner}.leaf import f")
    saved = modules.root / "saved"
    shutil.copytree(folder, saved)
    shutil.rmtree(folder)
    assert cell("f()") == "v1"

    folder.mkdir()  # the outer folder first, seen at a cell, then the inner one
    assert cell("f()") == "v1"
    shutil.copytree(saved / "inner", folder / "inner")
    shutil.copy(saved / "__init__.py", folder / "__init__.py")
    shutil.copy(saved / "sub.py", folder / "sub.py")
    assert cell("f()") == "v1"
    assert "waiting for a good save" not in status(cell)

    modules.write(f"{inner}.leaf", version("v2"))
    assert cell("f()") == "v2"


def test_a_folder_of_many_modules_removed_waits_once_not_once_per_file(shell, modules, cell):
    pkg = modules.named("many")
    modules.write(pkg, "", package=True)
    for i in range(40):
        modules.write(f"{pkg}.m{i}", version("v1"))
    cell("%autoreload 2")
    cell("\n".join(f"import {pkg}.m{i}" for i in range(40)))
    shutil.rmtree(modules.root / pkg)

    start = time.perf_counter()
    cell("pass")
    assert time.perf_counter() - start < 1.0  # one 50 ms wait for a save by rename, not 41


# -- a module that is a symlink ---------------------------------------------------


def linked(modules, target: Path) -> Path:
    """Make the module ``<prefix>`` a symlink to ``target`` (re-pointed by an atomic rename)."""
    link = modules.root / f"{modules.name}.py"
    temporary = modules.root / f"{modules.name}.link"
    os.symlink(target, temporary)
    os.replace(temporary, link)
    return link


def edits_of_the_real_file_are_seen(target, modules, cell) -> None:
    """Mode 2, ``f`` taken from the linked module; two edits of ``target`` each reach it."""
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")

    target.write_text(version("v2"))
    assert cell("f()") == "v2"
    target.write_text(version("v3"))
    assert cell("f()") == "v3"


def test_editing_the_file_a_module_links_to_is_seen(shell, modules, cell):
    target = modules.root / "elsewhere" / "real.py"
    target.parent.mkdir()
    target.write_text(version("v1"))
    linked(modules, target)
    edits_of_the_real_file_are_seen(target, modules, cell)


def test_a_module_through_a_chain_of_links_follows_the_real_file(shell, modules, cell):
    target = modules.root / "deep" / "real.py"
    target.parent.mkdir()
    target.write_text(version("v1"))
    middle = modules.root / "middle" / "hop.py"
    middle.parent.mkdir()
    os.symlink(os.path.relpath(target, middle.parent), middle)
    linked(modules, middle)
    edits_of_the_real_file_are_seen(target, modules, cell)


def test_re_pointing_the_link_is_a_save_and_the_new_target_is_watched(shell, modules, cell):
    first, second = modules.root / "first.py.txt", modules.root / "second" / "second.py"
    second.parent.mkdir()
    first.write_text(version("v1"))
    second.write_text(version("v2"))
    linked(modules, first)
    cell("%autoreload 2")
    cell(f"from {modules.name} import f")

    linked(modules, second)
    assert cell("f()") == "v2"
    second.write_text(version("v3"))
    assert cell("f()") == "v3"
    first.write_text(version("old target"))
    assert cell("f()") == "v3"


def test_a_module_in_a_linked_folder_whose_target_is_recreated(shell, modules, cell):
    real = modules.root / "real_pkg"
    real.mkdir()
    (real / "__init__.py").write_text("")
    (real / "sub.py").write_text(version("v1"))
    pkg = modules.named("pkg")
    os.symlink(real, modules.root / pkg)
    cell("%autoreload 2")
    cell(f"from {pkg}.sub import f")

    (real / "sub.py").write_text(version("v2"))
    assert cell("f()") == "v2"
    shutil.rmtree(real)
    assert cell("f()") == "v2"  # the link leads nowhere: it keeps running its last version
    real.mkdir()
    (real / "__init__.py").write_text("")
    (real / "sub.py").write_text(version("v3"))
    assert cell("f()") == "v3"
    (real / "sub.py").write_text(version("v4"))
    assert cell("f()") == "v4"


def test_re_pointing_a_linked_package_folder_is_a_save_and_the_new_folder_is_watched(shell, modules, cell):
    first, second = modules.root / "first_pkg", modules.root / "second_pkg"
    for folder, value in ((first, "v1"), (second, "v2")):
        folder.mkdir()
        (folder / "__init__.py").write_text("")
        (folder / "sub.py").write_text(version(value))
    pkg = modules.named("pkg")
    os.symlink(first, modules.root / pkg)
    cell("%autoreload 2")
    cell(f"from {pkg}.sub import f")

    temporary = modules.root / "pkg.link"
    os.symlink(second, temporary)
    os.replace(temporary, modules.root / pkg)
    assert cell("f()") == "v2"
    (second / "sub.py").write_text(version("v3"))
    assert cell("f()") == "v3"
    (first / "sub.py").write_text(version("old folder"))
    assert cell("f()") == "v3"


# -- checkouts and stashes: many files at once ------------------------------------


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false",
         "-c", "init.defaultBranch=main", *args],
        cwd=root, check=True, capture_output=True,
    )


BASE = """\
SCALE = {scale}
REGISTRY = []


def scaled(x):
    return x * SCALE


class Shape:
    def area(self):
        return {area!r}
"""

USER = """\
from {pkg}.base import SCALE, scaled


def total(x):
    return scaled(x) + SCALE + {bonus}
"""

EXTRA = """\
def extra():
    return {value!r}
"""


def write_tree(modules, pkg: str, *, scale: int, area: str, bonus: int, extra: str | None) -> None:
    modules.write(f"{pkg}.base", BASE.format(scale=scale, area=area))
    modules.write(f"{pkg}.user", USER.format(pkg=pkg, bonus=bonus))
    folder = modules.root / pkg / "extra"
    if extra is None:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        modules.write(f"{pkg}.extra", "", package=True)
        modules.write(f"{pkg}.extra.mod", EXTRA.format(value=extra))


@pytest.fixture(params=["no bytecode", "bytecode"])
def repository(request, shell, modules, cell, monkeypatch):
    """A git repository in the test's folder: a package on ``main``, changed on ``other``.

    ``other`` changes a constant, a function and a method across two modules
    (one imports from the other) and has no ``extra`` folder at all: without
    ``__pycache__`` in it, a checkout removes the folder and recreates it; with
    one (ignored by git), the folder stays and only its files go and come back.
    """
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.setattr(sys, "dont_write_bytecode", request.param == "no bytecode")
    pkg = modules.named("pkg")
    modules.write(pkg, "", package=True)
    root = modules.root
    (root / ".gitignore").write_text("__pycache__/\n")
    git(root, "init", "-q")
    write_tree(modules, pkg, scale=2, area="main", bonus=0, extra="main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "main")
    git(root, "checkout", "-q", "-b", "other")
    write_tree(modules, pkg, scale=10, area="other", bonus=1, extra=None)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "other")
    git(root, "checkout", "-q", "main")
    cell("%autoreload 2")
    cell(f"from {pkg} import base, user\nfrom {pkg}.extra.mod import extra\nshape = base.Shape()")
    cell("base.REGISTRY.append('kept')")
    return pkg


def test_checkout_of_another_branch_and_back(repository, modules, cell):
    root = modules.root
    assert cell("(user.total(1), shape.area(), extra())") == (4, "main", "main")

    git(root, "checkout", "-q", "other")
    assert cell("(user.total(1), shape.area(), base.SCALE, user.SCALE)") == (21, "other", 10, 10)
    assert cell("extra()") == "main"  # its folder is gone: it keeps running its last version
    assert cell("base.REGISTRY") == ["kept"]  # state a fresh import would lose, kept

    git(root, "checkout", "-q", "main")
    assert cell("(user.total(1), shape.area(), base.SCALE, user.SCALE, extra())") == (4, "main", 2, 2, "main")
    assert cell("base.REGISTRY") == ["kept"]
    assert cell("isinstance(shape, base.Shape)")
    assert "waiting for a good save" not in str(cell("%hotswap"))

    modules.write(f"{repository}.extra.mod", EXTRA.format(value="edited"))  # the folder git recreated
    modules.write(f"{repository}.base", BASE.format(scale=3, area="edited"))
    assert cell("(extra(), shape.area(), user.total(1))") == ("edited", "edited", 6)


def test_checkout_back_and_forth_without_a_cell_in_between(repository, modules, cell):
    root = modules.root
    git(root, "checkout", "-q", "other")
    git(root, "checkout", "-q", "main")
    assert cell("(user.total(1), shape.area(), extra())") == (4, "main", "main")

    modules.write(f"{repository}.extra.mod", EXTRA.format(value="edited"))
    assert cell("extra()") == "edited"


def test_stash_and_pop(repository, modules, cell):
    root = modules.root
    write_tree(modules, repository, scale=5, area="mine", bonus=2, extra="mine")
    assert cell("(user.total(1), shape.area(), extra())") == (12, "mine", "mine")

    git(root, "stash", "-q")
    assert cell("(user.total(1), shape.area(), extra(), user.SCALE)") == (4, "main", "main", 2)
    git(root, "stash", "pop", "-q")
    assert cell("(user.total(1), shape.area(), extra(), user.SCALE)") == (12, "mine", "mine", 5)
    assert cell("base.REGISTRY") == ["kept"]

    modules.write(f"{repository}.extra.mod", EXTRA.format(value="after"))
    assert cell("extra()") == "after"

"""``python -m hotswap.demo``: watch hotswap keep a live session in step with edits.

It writes a small module to a temporary directory, drives a real IPython shell
through the cells a user would type, edits the file between cells the way an
editor would, and shows what each cell printed. It exits non-zero if any step
did not behave as promised, so it doubles as a smoke test of an install.
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
from pathlib import Path

VERSION_1 = '''
    """A tiny model library, as a user would write it."""

    SCALE = 2

    def f():
        return "f, version 1"

    class Model:
        def __init__(self, weight):
            self.weight = weight

        def predict(self, x):
            return self.weight * x
'''

VERSION_2 = '''
    """A tiny model library, as a user would write it."""

    SCALE = 2

    def f():
        return "f, version 2"

    class Model:
        def __init__(self, weight):
            self.weight = weight

        def predict(self, x):
            return self.weight * x * SCALE   # changed

        def explain(self):                  # added
            return f"weight={self.weight}, scale={SCALE}"
'''

BROKEN = VERSION_2 + "\n    def oops(:\n"


def _save(path: Path, text: str) -> None:
    """Save the way many editors do: write a temporary file, rename it over the old one."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(textwrap.dedent(text))
    os.replace(temporary, path)


def main() -> int:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    folder = Path(tempfile.mkdtemp(prefix="hotswap-demo-"))
    library = folder / "demo_mylib.py"
    _save(library, VERSION_1)
    sys.path.insert(0, str(folder))
    config = Config()
    config.HistoryManager.enabled = False  # leave the user's IPython history alone
    shell = InteractiveShell.instance(config=config)
    failures = 0

    def cell(source: str, expect: object = None) -> None:
        nonlocal failures
        print(f"In [{shell.execution_count}]: {source}")
        result = shell.run_cell(source, store_history=True)
        sys.stdout.flush()
        if not result.success:
            failures += 1
            print("    !! the cell failed")
        elif expect is not None and result.result != expect:
            failures += 1
            print(f"    !! expected {expect!r}")

    print(f"# A module on disk: {library}\n")
    cell("%load_ext hotswap")
    cell("%autoreload 2")
    cell("from demo_mylib import f, Model")
    cell("m = Model(weight=3)   # an object built before any edit")
    cell("f(), m.predict(10)", ("f, version 1", 30))

    print("\n# The user edits demo_mylib.py in an editor: f changes, Model.predict changes,")
    print("# Model.explain is added. Saved. The next cell runs the new code:\n")
    _save(library, VERSION_2)
    cell("f(), m.predict(10), m.explain()", ("f, version 2", 60, "weight=3, scale=2"))
    cell("isinstance(m, Model), Model is __import__('demo_mylib').Model", (True, True))

    print("\n# A broken save: hotswap says what failed, keeps the last good code, the cell runs:\n")
    _save(library, BROKEN)
    cell("f()", "f, version 2")

    print("\n# The fix is saved; it is picked up at the next cell:\n")
    _save(library, VERSION_2.replace("version 2", "version 3"))
    cell("f(), m.predict(10)", ("f, version 3", 60))

    print()
    if failures:
        print(f"hotswap demo: {failures} step(s) did not behave as expected.")
        return 1
    print("hotswap demo: every step behaved as expected.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

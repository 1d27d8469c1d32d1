"""A hotswap session in a process of its own, for the Dask stories that need more than one session
(two sessions on one cluster) or a session that ends.

Run as a script: an IPython shell with hotswap loaded and mode 2 reads cells from stdin, one JSON
string a line, runs each as a user would, and answers each with one JSON line on stdout::

    {"value": <the cell's value, its repr if not JSON>, "error": <repr of the error or null>,
     "stderr": <what the cell printed on stderr (hotswap's messages)>}

At the end of stdin the process ends normally, so its exit handlers run as a user's would.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


def main() -> None:
    answers = sys.stdout
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    for line in ["%load_ext hotswap", "%autoreload 2"]:
        shell.run_cell(line)
    for line in sys.stdin:
        printed, said = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(said):
            result = shell.run_cell(json.loads(line))
        error = result.error_before_exec or result.error_in_exec
        answer = {"value": result.result, "error": repr(error) if error else None, "stderr": said.getvalue()}
        answers.write(json.dumps(answer, default=repr) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()

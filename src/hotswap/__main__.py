"""``python -m hotswap``: the interactive interpreter, with reloading on."""

import sys

from ._repl import main

sys.exit(main())

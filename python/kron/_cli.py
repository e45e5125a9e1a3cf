"""The ``kron`` console script: the command line, run by the native module (see docs/cli.md).

The same Rust code is the ``kron`` cargo binary; ``pip install`` puts this entry point on PATH.
"""

from __future__ import annotations

import signal
import sys

from . import _kron


def main() -> None:
    """Runs ``kron`` with ``sys.argv``; exits 0 on success, 1 on failure, 2 on a usage error."""
    # A command line stops at Ctrl-C at once, as the native binary does (the native code runs
    # without the GIL, so Python's own handler would only run after it returns).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    raise SystemExit(_kron.cli_main(sys.argv))

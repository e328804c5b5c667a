"""`python -m checkpoint_tools --help`."""

from __future__ import annotations

import sys

from checkpoint_tools.cli import run_cli

if __name__ == "__main__":
    sys.exit(run_cli())

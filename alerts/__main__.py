"""`python -m alerts --help`."""

from __future__ import annotations

import sys

from alerts.cli import run_cli

if __name__ == "__main__":
    sys.exit(run_cli())

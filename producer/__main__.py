"""`python -m producer --help`."""

from __future__ import annotations

import sys

from producer.cli import run_cli

if __name__ == "__main__":
    sys.exit(run_cli())

"""clickpulse's neutral contracts, shared by every program: the event, the job's lock file, the query names, the CLI.

Nothing here imports a program package (producer, streaming_job, reporting, checkpoint_tools, devstack, alerts)
or `storage`: every program may import it, so it stays a leaf (tests/test_package_boundaries.py keeps it so).
"""

from __future__ import annotations

__version__ = "0.1.0"

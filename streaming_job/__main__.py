"""`python -m streaming_job [flags]`: the same as `spark-submit streaming_job/main.py [flags]`."""

import sys

from streaming_job.main import run_cli

sys.exit(run_cli())

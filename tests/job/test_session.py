"""The job's Spark master: on a local master a failed task is tried again, and a user's own choice is kept."""

from __future__ import annotations

import pytest

from streaming_job.session import local_master


@pytest.mark.parametrize(("given", "max_failures", "used"), [
    (None, None, "local[*,4]"),  # `python -m streaming_job`
    ("local[*]", None, "local[*,4]"),  # spark-submit's default (and `make job`)
    ("local[2]", None, "local[2,4]"),
    ("local", None, "local[1,4]"),
    ("local[2]", "7", "local[2,7]"),  # --conf spark.task.maxFailures, which Spark ignores on local masters
])
def test_a_local_master_without_a_failure_count_gets_task_attempts(given, max_failures, used):
    assert local_master(given, max_failures) == used


@pytest.mark.parametrize("given", ["local[2,1]", "local[*, 3]", "spark://127.0.0.1:7077", "yarn", "k8s://https://api:6443"])
def test_a_master_that_names_its_attempts_or_a_cluster_is_kept(given):
    assert local_master(given, "9") is None

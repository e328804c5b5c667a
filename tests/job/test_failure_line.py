"""When the job gives up on MongoDB, it says why in one line instead of Spark's stack traces."""

from __future__ import annotations

from streaming_job.main import failure_line

# The shape of what Spark reports when a foreachBatch task raised (shortened: the real text runs for pages).
SPARK_ERROR = """[STREAM_FAILED] Query [id = 1a, runId = 2b] terminated with exception: An exception was raised by the \
Python Proxy. Return Message: Traceback (most recent call last):
  File "/x/pyspark/sql/utils.py", line 117, in call
py4j.protocol.Py4JJavaError: An error occurred while calling o181.foreachPartition.
: org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 9.0 failed 4 times, most recent \
failure: Lost task 0.3 in stage 9.0 (TID 31) (127.0.0.1 executor driver): org.apache.spark.api.python.PythonException: \
Traceback (most recent call last):
  File "/w/storage/sink.py", line 233, in write
storage.retry.StoreUnavailable: MongoDB at mongodb://app:***@db/ still failing after 301 s (retrying for at most 300 s): \
ServerSelectionTimeoutError: db:27017: [Errno 111] Connection refused

\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException(PythonRunner.scala:621)
"""


def test_a_sink_that_gave_up_is_reported_in_its_own_words():
    assert failure_line(SPARK_ERROR) == (
        "MongoDB at mongodb://app:***@db/ still failing after 301 s (retrying for at most 300 s): "
        "ServerSelectionTimeoutError: db:27017: [Errno 111] Connection refused (see --sink-retry-for)")


def test_any_other_failure_is_reported_by_its_first_line():
    assert failure_line("boom\n\tat org.apache.Some.frame") == "boom"

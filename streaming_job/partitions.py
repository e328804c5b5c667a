"""Which Kafka partitions each of the aggregates query's streams reads: one stream per partition, so each has a watermark.

Spark keeps one watermark per query: the newest event time read minus the delay. A batch capped by
`--max-offsets-per-trigger` reads every partition some way: when partitions are filled unevenly in event time (a
sticky partitioner writes runs of thousands of records to one partition), one that is ahead pushes the watermark past
records another has not been read up to yet, and Spark drops them as late although they were on time.

So the aggregates query reads each partition as a stream of its own, each with its own watermark, and Spark's
`multipleWatermarkPolicy` "min" (its default) keeps the query's watermark at the slowest partition's: a record on
time for its own partition is never dropped because the job read it late. A partition that stops receiving records
holds the watermark where it is (state then grows until it receives again; numbers stay exact and are still written).

The number of streams is fixed by the checkpoint (Spark refuses a different number of sources). Partitions added to the
topic later join the stream of `partition % streams`, and more than MAX_STREAMS partitions share streams that way.
"""

from __future__ import annotations

import logging
import threading
import time

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

MAX_STREAMS = 32  # each stream is a Kafka source and a parse/validate branch of the plan


def assign(partitions: list[int], streams: int) -> list[list[int]]:
    """The partitions each stream reads: partition p goes to stream p % streams (streams without any are left out)."""
    groups = [[p for p in sorted(partitions) if p % streams == i] for i in range(streams)]
    return [g for g in groups if g]


def topic_partitions(bootstrap_servers: str, topic: str, stop: threading.Event | None = None,
                     poll_seconds: float = 2.0) -> list[int]:
    """The topic's partitions, waiting (with one log line) until the topic exists; [] if `stop` is set first."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, client_id="clickpulse-job-metadata")
    try:
        waited = False
        while True:
            found = consumer.partitions_for_topic(topic)
            if found:
                if waited:
                    log.info("topic %s exists now (%d partitions)", topic, len(found))
                return sorted(found)
            if not waited:
                log.info("waiting for topic %s to exist on %s", topic, bootstrap_servers)
                waited = True
            if stop is not None and stop.wait(poll_seconds):
                return []
            if stop is None:
                time.sleep(poll_seconds)
            consumer.poll(timeout_ms=0)  # refresh metadata
    finally:
        consumer.close()


def checkpoint_streams(spark: SparkSession, query_checkpoint: str) -> int | None:
    """How many sources the query's checkpoint was made with (its newest offsets entry); None for a new checkpoint.

    Read through Hadoop's FileSystem, so local paths, file://, hdfs:// and s3a:// all work.
    """
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    offsets = jvm.org.apache.hadoop.fs.Path(f"{query_checkpoint.rstrip('/')}/offsets")
    fs = offsets.getFileSystem(conf)
    if not fs.exists(offsets):
        return None
    batches = [int(st.getPath().getName()) for st in fs.listStatus(offsets) if st.getPath().getName().isdigit()]
    if not batches:
        return None
    stream = fs.open(jvm.org.apache.hadoop.fs.Path(offsets, str(max(batches))))
    try:
        text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()
    # v1 / metadata / one line per source
    return max(0, len([line for line in text.splitlines() if line.strip()]) - 2) or None


def streams_for(partitions: list[int], existing: int | None) -> int:
    """Streams of a query: what its checkpoint has, else one per partition (at most MAX_STREAMS)."""
    return existing if existing else max(1, min(len(partitions), MAX_STREAMS))

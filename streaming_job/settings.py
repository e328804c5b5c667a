"""The job's settings: one frozen, validated dataclass, built from flags and env in `main()` only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from clickpulse import events as ev
from clickpulse.cli import parse_duration
from storage import contract as c
from storage.layout import Layout, Windows


@dataclass(frozen=True)
class WindowSpec:
    """A sliding window: `size` long, starting every `slide` (starts aligned to multiples of `slide`)."""

    size: timedelta
    slide: timedelta

    def __post_init__(self) -> None:
        if self.slide <= timedelta(0) or self.size <= timedelta(0):
            raise ValueError("window size and slide must be positive")
        if self.size % self.slide != timedelta(0):
            raise ValueError(f"window size {self.size} must be a whole multiple of its slide {self.slide}")
        if self.slide % timedelta(seconds=1) != timedelta(0):
            raise ValueError("window slide must be a whole number of seconds")

    @property
    def size_us(self) -> int:
        return self.size // timedelta(microseconds=1)

    @property
    def slide_us(self) -> int:
        return self.slide // timedelta(microseconds=1)


@dataclass(frozen=True)
class Trigger:
    """`processing-time:<duration>` (run forever) or `available-now` (drain Kafka as it is now, then exit)."""

    available_now: bool = False
    interval: timedelta = timedelta(seconds=1)

    @classmethod
    def parse(cls, text: str) -> Trigger:
        if text == "available-now":
            return cls(available_now=True)
        if text.startswith("processing-time:"):
            return cls(interval=parse_duration(text.split(":", 1)[1]))
        raise ValueError(f"trigger must be 'available-now' or 'processing-time:<duration>', got {text!r}")

    def describe(self) -> str:
        return "available-now" if self.available_now else f"processing-time {self.interval.total_seconds():g}s"


@dataclass(frozen=True)
class JobSettings:
    """Everything the streaming job needs; validated on construction."""

    bootstrap_servers: str
    mongo_uri: str
    checkpoint_dir: str
    topic: str = ev.DEFAULT_TOPIC
    database: str = c.DEFAULT_DATABASE
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int | None = None
    trigger: Trigger = field(default_factory=Trigger)
    watermark: timedelta = timedelta(minutes=10)
    active_users_window: WindowSpec = WindowSpec(timedelta(minutes=5), timedelta(minutes=1))
    sessions_window: WindowSpec = WindowSpec(timedelta(minutes=5), timedelta(minutes=1))
    page_views_window: WindowSpec = WindowSpec(timedelta(minutes=15), timedelta(minutes=1))
    event_types: tuple[str, ...] = ev.EVENT_TYPES
    max_event_bytes: int = ev.MAX_EVENT_BYTES
    max_future: timedelta = timedelta(seconds=ev.MAX_FUTURE_SECONDS)
    retention: timedelta | None = timedelta(days=7)
    # None: spark.sql.shuffle.partitions from --conf, else the job's default (session.SESSION_DEFAULTS)
    shuffle_partitions: int | None = None
    fail_on_data_loss: bool = True
    mongo_writers: int | None = None
    metrics: str | None = None  # "prometheus": Spark's PrometheusServlet and streaming metrics
    sink_retry_for: timedelta = timedelta(minutes=5)
    # Users sending more valid events than this in one second of event time are recorded as bots (bot_activity);
    # None: no bot flagging.
    bot_max_events_per_second: int | None = 10

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ValueError("--bootstrap-servers must not be empty")
        if not self.topic.strip():
            raise ValueError("--topic must not be empty")
        if not self.checkpoint_dir.strip():
            raise ValueError("--checkpoint-dir must not be empty")
        if not self.mongo_uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("--mongo-uri must start with mongodb:// or mongodb+srv://")
        if self.starting_offsets not in ("earliest", "latest"):
            raise ValueError(f"--starting-offsets must be earliest or latest, got {self.starting_offsets!r}")
        if self.max_offsets_per_trigger is not None and self.max_offsets_per_trigger <= 0:
            raise ValueError("--max-offsets-per-trigger must be a positive number")
        if self.watermark < timedelta(0):
            raise ValueError("--watermark must not be negative")
        if not self.event_types or any(not t.strip() for t in self.event_types):
            raise ValueError("--event-types must list at least one non-empty type")
        if self.max_event_bytes <= 0:
            raise ValueError("--max-event-bytes must be positive")
        if self.shuffle_partitions is not None and self.shuffle_partitions <= 0:
            raise ValueError("--shuffle-partitions must be positive")
        if self.mongo_writers is not None and self.mongo_writers <= 0:
            raise ValueError("--mongo-writers must be positive")
        if self.metrics not in (None, "prometheus"):
            raise ValueError(f"--metrics must be none or prometheus, got {self.metrics!r}")
        if self.retention is not None and self.retention <= timedelta(0):
            raise ValueError("--retention must be positive (or 'none')")
        if self.bot_max_events_per_second is not None and self.bot_max_events_per_second < 1:
            raise ValueError("--bot-max-events-per-second must be at least 1")
        if self.sink_retry_for < timedelta(0):
            raise ValueError("--sink-retry-for must not be negative")

    def layout(self) -> Layout:
        """The windows this job computes, as readers of its output need them (storage/layout.py)."""
        return Layout(*(Windows(w.size, w.slide) for w in (self.active_users_window, self.page_views_window,
                                                           self.sessions_window)))

    def query_checkpoint(self, query: str) -> str:
        """One checkpoint directory per query under the base directory (local path or URI)."""
        return f"{self.checkpoint_dir.rstrip('/')}/{query}"

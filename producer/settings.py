"""The producer's settings: one frozen, validated value built by the CLI (or by tests) and passed down."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# The reasons the producer can inject on purpose, each mapping to exactly one of the job's INVALID_REASONS.
# (too_large, not_an_object and bad_timestamp are left out: they are the job's safety nets, not traffic.)
INJECTABLE_REASONS = ("malformed_json", "missing_field", "wrong_type", "unknown_event_type", "future_timestamp")
LATE = "late"
DUPLICATE = "duplicate"
VALID = "valid"
REPLAYED = "replayed"
BOT = "bot"  # an event of a bot user's burst (valid, but one of far more in its second than a person sends)
# Every kind the summary reports an injected count for.
INJECTED_KINDS = (*INJECTABLE_REASONS, LATE, DUPLICATE)

def parse_rate(text: str) -> float:
    """Events per second; "max" (or 0) means as fast as possible."""
    if text.strip().lower() in ("max", "0"):
        return 0.0
    try:
        rate = float(text)
    except ValueError:
        raise ValueError(f"bad rate {text!r}: use events per second or 'max'") from None
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"bad rate {text!r}: must be a positive number of events per second, or 'max'")
    return rate


def parse_burst(text: str) -> tuple[float, float]:
    """Two rate bounds "LOW:HIGH" (events/s) for burst mode."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"bad burst {text!r}: use LOW:HIGH events per second, e.g. 50:500")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"bad burst {text!r}: use LOW:HIGH events per second, e.g. 50:500") from None
    return low, high


def parse_start_time(text: str) -> datetime:
    """An ISO-8601 instant; a naive one is taken as UTC."""
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"bad start time {text!r}: use ISO-8601, e.g. 2026-11-23T10:00:00Z") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _check_bootstrap(servers: str) -> None:
    hosts = [h.strip() for h in servers.split(",")]
    for h in hosts:
        host, sep, port = h.rpartition(":")
        if not h or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad bootstrap servers {servers!r}: use host:port[,host:port...]")


@dataclass(frozen=True)
class ProducerSettings:
    """Everything one producer run needs. Defaults: clean traffic (no faults) at 100 events/s, forever."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "clickstream"
    partitions: int = 3
    replication_factor: int = 1
    # Pacing: events per second (0 = as fast as possible), and when to stop (neither = until stopped).
    rate: float = 100.0
    count: int | None = None
    duration: float | None = None
    # Events handed over per pacing step (0 = auto, about 200 steps per second); in burst mode, events per burst.
    batch_size: int = 0
    burst: tuple[float, float] | None = None
    pause_seconds: float = 1.0
    # Traffic model
    seed: int = 0
    start_time: datetime | None = None
    users: int = 1000
    pages: int = 200
    zipf_exponent: float = 1.1
    heavy_user_share: float = 0.05
    heavy_user_weight: float = 20.0
    session_seconds: float = 180.0
    session_timeout: float = 300.0
    # Bots: a share of the users (never heavy ones) who, each time they would send an event, send a burst of
    # `bot_burst` page views within one second of event time instead.
    bot_ratio: float = 0.0
    bot_burst: int = 30
    # Faults: invalid_ratio is split evenly over invalid_kinds; late and duplicate have their own ratios.
    invalid_ratio: float = 0.0
    invalid_kinds: tuple[str, ...] = INJECTABLE_REASONS
    late_ratio: float = 0.0
    late_by: float = 120.0
    duplicate_ratio: float = 0.0
    # Input/output
    from_file: Path | None = None
    dry_run: bool = False
    # Delivery
    linger_ms: int = 20
    kafka_batch_bytes: int = 512 * 1024
    compression: str | None = None
    max_pending: int = 200_000
    delivery_timeout: float = 120.0
    connect_timeout: float = 120.0
    progress_interval: float = 5.0

    def __post_init__(self) -> None:
        _check_bootstrap(self.bootstrap_servers)
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", self.topic):
            raise ValueError(f"bad topic {self.topic!r}: use 1-249 of [A-Za-z0-9._-]")
        if self.partitions < 1 or self.replication_factor < 1:
            raise ValueError("partitions and replication factor must be at least 1")
        if not math.isfinite(self.rate) or self.rate < 0:
            raise ValueError(f"rate must be >= 0 events/s (0 = max), got {self.rate}")
        if self.count is not None and self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"duration must be > 0 seconds, got {self.duration}")
        if self.count is not None and self.duration is not None:
            raise ValueError("give --count or --duration, not both")
        if self.batch_size < 0:
            raise ValueError(f"batch size must be >= 0 (0 = auto), got {self.batch_size}")
        if self.burst is not None:
            low, high = self.burst
            if not 0 < low <= high or not math.isfinite(high):
                raise ValueError(f"burst bounds must satisfy 0 < LOW <= HIGH, got {low}:{high}")
        if self.pause_seconds < 0:
            raise ValueError(f"pause must be >= 0 seconds, got {self.pause_seconds}")
        if self.users < 1 or self.pages < 1:
            raise ValueError("users and pages must be at least 1")
        if self.zipf_exponent < 0:
            raise ValueError(f"zipf exponent must be >= 0, got {self.zipf_exponent}")
        if not 0 <= self.heavy_user_share <= 1 or self.heavy_user_weight < 1:
            raise ValueError("heavy user share must be in [0, 1] and heavy user weight >= 1")
        if not self.session_seconds > 0 or not self.session_timeout > 0:
            raise ValueError("session length and session timeout must be > 0 seconds")
        if not 0 <= self.bot_ratio <= 1:
            raise ValueError(f"bot-ratio must be between 0 and 1, got {self.bot_ratio}")
        if self.bot_burst < 2:
            raise ValueError(f"bot-burst must be at least 2 events, got {self.bot_burst}")
        if self.bot_ratio > 0 and self.bot_users == 0:
            raise ValueError(f"no user is left to be a bot: {self.heavy_users} of {self.users} users are heavy users "
                             "(lower --heavy-share or raise --users)")
        for name in ("invalid_ratio", "late_ratio", "duplicate_ratio"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name.replace('_', '-')} must be between 0 and 1, got {value}")
        if self.duplicate_ratio >= 0.5:
            raise ValueError(f"duplicate-ratio must be below 0.5 (a duplicate needs an original), got {self.duplicate_ratio}")
        if self.invalid_ratio + self.late_ratio + self.duplicate_ratio > 1 + 1e-9:
            raise ValueError("invalid-ratio + late-ratio + duplicate-ratio must not exceed 1")
        unknown = [k for k in self.invalid_kinds if k not in INJECTABLE_REASONS]
        if unknown or not self.invalid_kinds or len(set(self.invalid_kinds)) != len(self.invalid_kinds):
            raise ValueError(f"invalid kinds must be distinct names from: {', '.join(INJECTABLE_REASONS)}")
        if self.late_by <= 0:
            raise ValueError(f"late-by must be > 0 seconds, got {self.late_by}")
        if self.start_time is not None and self.start_time.tzinfo is None:
            raise ValueError("start time must be timezone-aware (UTC)")
        if self.linger_ms < 0 or self.kafka_batch_bytes < 1024:
            raise ValueError("linger must be >= 0 ms and the Kafka batch at least 1024 bytes")
        if self.compression not in (None, "gzip", "snappy", "lz4", "zstd"):
            raise ValueError(f"compression must be none, gzip, snappy, lz4 or zstd, got {self.compression!r}")
        if self.max_pending < 1:
            raise ValueError("max pending must be at least 1")
        if not self.delivery_timeout > 0 or not self.connect_timeout >= 0 or not self.progress_interval > 0:
            raise ValueError("timeouts and the progress interval must be positive")

    @property
    def heavy_users(self) -> int:
        """How many users are heavy users."""
        return round(self.users * self.heavy_user_share)

    @property
    def bot_users(self) -> int:
        """How many users are bots: the bot ratio of the users, at least one when the ratio is above 0, and only
        users who are not heavy (a bot is a bot, not a keen shopper)."""
        if self.bot_ratio == 0:
            return 0
        return min(max(1, math.floor(self.users * self.bot_ratio + 0.5)), self.users - self.heavy_users)

    @property
    def paced(self) -> bool:
        """Whether events follow a schedule (False: as fast as possible)."""
        return self.burst is not None or self.rate > 0

    @property
    def planned_count(self) -> int | None:
        """How many events this run sends, when known up front (count, or duration at a steady rate)."""
        if self.count is not None:
            return self.count
        if self.duration is not None and self.burst is None and self.rate > 0:
            return math.floor(self.rate * self.duration + 0.5)
        return None

    def ratios(self) -> dict[str, float]:
        """The exact share of the traffic each injected kind gets."""
        per_invalid = self.invalid_ratio / len(self.invalid_kinds)
        shares = {k: (per_invalid if k in self.invalid_kinds else 0.0) for k in INJECTABLE_REASONS}
        return {**shares, LATE: self.late_ratio, DUPLICATE: self.duplicate_ratio}

"""clickpulse's traffic source: realistic, reproducible, rate-controlled clickstream into Kafka (`python -m producer`).

A small pure API for tests and scripts:

- `producer.settings.ProducerSettings(...)`: one frozen, validated value with every knob (seed, start_time,
  users, pages, count, rate, invalid/late/duplicate ratios, ...). Its defaults are clean traffic (no faults).
- `producer.generator.generate(settings) -> Iterator[Event]`: the run's events in order. `Event` is a NamedTuple
  `(key, value, kind, time_ms)`: key = user_id (utf-8 bytes), value = compact JSON (utf-8 bytes) following
  `clickpulse.events`, kind = "valid", one of the job's reasons ("malformed_json", "missing_field", "wrong_type",
  "unknown_event_type", "future_timestamp"), "late", "duplicate" or "bot" (an event of a bot's burst, with
  `bot_ratio` > 0); time_ms = model clock (epoch ms) before any late/future shift. With `start_time` set the
  sequence is a pure function of the settings (byte-identical).
- `producer.delivery.send_events(bootstrap_servers, topic, events) -> {"sent", "failed", "errors"}`: put
  (key, value[, kind, time_ms]) items on a topic (created if missing) with acks=all and count the outcomes;
  `record_timestamps=True` uses each Event's time_ms as the Kafka record timestamp.

Example::

    settings = ProducerSettings(seed=7, count=1000, rate=100, start_time=datetime(2026, 11, 23, 10, tzinfo=UTC),
                                invalid_ratio=0.05, late_ratio=0.01, duplicate_ratio=0.01)
    events = list(generate(settings))
    send_events("127.0.0.1:9092", "clickstream-test", events, record_timestamps=True)
"""

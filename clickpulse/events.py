"""The clickstream event contract, shared by the producer, the job, the tests and the reference (no Spark here).

A valid event is a JSON object such as
`{"event_id": "e1", "timestamp": "2026-11-23T10:15:30.123Z", "user_id": "usr_1", "session_id": "sess_9",
"event_type": "page_view", "page_url": "/products/books"}`; `event_id` is optional and extra fields are ignored.
"""

from __future__ import annotations

EVENT_ID = "event_id"
TIMESTAMP = "timestamp"
USER_ID = "user_id"
SESSION_ID = "session_id"
EVENT_TYPE = "event_type"
PAGE_URL = "page_url"

REQUIRED_FIELDS = (TIMESTAMP, USER_ID, SESSION_ID, EVENT_TYPE)
PAGE_VIEW = "page_view"
# Fields required only for some event types.
REQUIRED_FOR_TYPE = {PAGE_VIEW: (PAGE_URL,)}
EVENT_TYPES = ("page_view", "click", "add_to_cart", "purchase", "login", "logout", "search")

DEFAULT_TOPIC = "clickstream"
MAX_EVENT_BYTES = 64 * 1024
# An event stamped further than this ahead of the time Kafka received it is `future_timestamp`.
MAX_FUTURE_SECONDS = 5 * 60

"""The job's streaming queries: their names in pipeline_metrics, under the checkpoint dir and in the job's lock."""

from __future__ import annotations

AGGREGATES_QUERY = "aggregates"
INVALID_EVENTS_QUERY = "invalid_events"
QUERIES = (AGGREGATES_QUERY, INVALID_EVENTS_QUERY)

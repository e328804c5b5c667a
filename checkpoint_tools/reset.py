"""What `reset QUERY` deletes (the query's whole checkpoint folder) and what that means for the job's output."""

from __future__ import annotations

from checkpoint_tools.clean import CleanPlan, Deletion
from checkpoint_tools.layout import Checkpoint, CheckpointError
from checkpoint_tools.tables import human_bytes
from storage import contract as c


def plan_reset(cp: Checkpoint, query: str) -> CleanPlan:
    if query not in cp.queries:
        found = ", ".join(sorted(cp.queries)) or "none"
        raise CheckpointError(f"no query checkpoint named {query!r} in {cp.base} (found: {found})")
    q = cp.queries[query]
    return CleanPlan(cp.base, 0, (Deletion(query, "", q.total_bytes, "query", len(q.files)),), ())


def consequences(plan: CleanPlan) -> str:
    """What the user is about to do, in words: shown before asking for confirmation."""
    (d,) = plan.deletions
    what = {
        c.AGGREGATES_QUERY: (
            "recomputes every window aggregate from the records Kafka still holds and overwrites their documents; "
            "windows whose events Kafka already deleted (topic retention) come back smaller or not at all"
        ),
        c.INVALID_EVENTS_QUERY: "stores the invalid events Kafka still holds again (same ids: no duplicates)",
    }.get(d.query, "processes the records Kafka still holds again")
    return (
        f"reset {d.query}: deletes {plan.path(d)} ({d.files} files, {human_bytes(d.size)}), its progress and state. "
        f"The job's next run starts {d.query} over from its --starting-offsets (default earliest): with earliest it {what}; "
        f"with latest it skips everything already in the topic."
    )

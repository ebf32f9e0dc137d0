"""Create the tables' changelog topics before Faust starts, complete with leaders for every partition.

Faust creates them itself, but its consumer records topic metadata once at
start: a changelog created in that instant can be recorded with 0 partitions,
and every access to its table then fails with PartitionsMismatch until the
metadata is refreshed minutes later. Created beforehand, they are complete.
"""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient, NewTopic


def ensure_compacted_topics(bootstrap: str, names: set[str], partitions: int, timeout_s: float = 60.0) -> list[str]:
    """Create the missing topics of `names` (compacted); wait until all have `partitions`; return those created."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    missing = sorted(names - set(admin.list_topics(timeout=10).topics))
    if missing:
        futures = admin.create_topics(
            [NewTopic(t, partitions, 1, config={"cleanup.policy": "compact"}) for t in missing]
        )
        for future in futures.values():
            try:
                future.result(timeout_s)
            except Exception as exc:  # another worker of the same app created it first
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=10).topics
        ready = [t for t in names if t in topics and len(topics[t].partitions) == partitions]
        if len(ready) == len(names) and all(p.leader >= 0 for t in names for p in topics[t].partitions.values()):
            return missing
        time.sleep(0.2)
    raise RuntimeError(f"changelog topics not ready within {timeout_s:.0f} s: {sorted(names)}")

"""Create the tables' changelog topics before Faust starts, complete with leaders for every partition.

Faust creates them itself, but its consumer records topic metadata once at
start: a changelog created in that instant can be recorded with 0 partitions,
and every access to its table then fails with PartitionsMismatch until the
metadata is refreshed minutes later. Created beforehand, they are complete.
"""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from contracts import MAX_OUTPUT_BYTES

# A table value may be as large as the stream's largest output (a parked package, base64).
CHANGELOG_CONFIG = {"cleanup.policy": "compact", "max.message.bytes": str(MAX_OUTPUT_BYTES)}


def ensure_compacted_topics(bootstrap: str, names: set[str], partitions: int, timeout_s: float = 60.0) -> list[str]:
    """Create the missing topics of `names` with CHANGELOG_CONFIG, set it on the others; wait until all have
    `partitions`; return those created."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    missing = sorted(names - set(admin.list_topics(timeout=10).topics))
    _configure(admin, sorted(names - set(missing)), timeout_s)
    if missing:
        futures = admin.create_topics([NewTopic(t, partitions, 1, config=CHANGELOG_CONFIG) for t in missing])
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


def _configure(admin: AdminClient, existing: list[str], timeout_s: float) -> None:
    """Bring existing changelogs in line with CHANGELOG_CONFIG (incremental: other keys stay as they are)."""
    if not existing:
        return
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in CHANGELOG_CONFIG.items()]
    resources = [ConfigResource(ResourceType.TOPIC, t, incremental_configs=entries) for t in existing]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(timeout_s)

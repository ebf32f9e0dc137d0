"""Create the worker's own topics (tables' changelogs, internal topics) before Faust starts, complete with leaders.

Faust creates them itself, but its consumer records topic metadata once at
start: a topic created in that instant can be recorded with 0 partitions, and
every access to its table (or agent) then fails with PartitionsMismatch until
the metadata is refreshed minutes later. Created beforehand, they are complete.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from contracts import MAX_OUTPUT_BYTES

# A table value may be as large as the stream's largest output (a parked package, base64).
CHANGELOG_CONFIG = {"cleanup.policy": "compact", "max.message.bytes": str(MAX_OUTPUT_BYTES)}
# Internal topics carry small reports the worker itself consumes within seconds.
INTERNAL_CONFIG = {"cleanup.policy": "delete", "retention.ms": str(24 * 3600 * 1000)}


def ensure_app_topics(
    bootstrap: str, configs: Mapping[str, Mapping[str, str]], partitions: int, timeout_s: float = 60.0
) -> list[str]:
    """Create the missing topics of `configs` with their config, set it on the others; wait until all have
    `partitions` with leaders; return those created."""
    names = set(configs)
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    missing = sorted(names - set(admin.list_topics(timeout=10).topics))
    _configure(admin, {t: configs[t] for t in sorted(names - set(missing))}, timeout_s)
    if missing:
        futures = admin.create_topics([NewTopic(t, partitions, 1, config=dict(configs[t])) for t in missing])
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
    raise RuntimeError(f"the worker's topics are not ready within {timeout_s:.0f} s: {sorted(names)}")


def _configure(admin: AdminClient, existing: Mapping[str, Mapping[str, str]], timeout_s: float) -> None:
    """Bring existing topics in line with their config (incremental: other keys stay as they are)."""
    if not existing:
        return
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            topic,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in config.items()
            ],
        )
        for topic, config in existing.items()
    ]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(timeout_s)

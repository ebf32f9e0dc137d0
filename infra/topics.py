"""Create or update the topics declared in `contracts.topics`."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic, ResourceType
from rich.console import Console

from contracts.topics import TOPICS, TopicSpec
from infra.errors import InfraError
from infra.settings import InfraSettings

console = Console(stderr=True, soft_wrap=True)
_TIMEOUT_S = 30


def _admin(settings: InfraSettings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 4})


def ensure_topics(settings: InfraSettings, topics: tuple[TopicSpec, ...] = TOPICS) -> None:
    admin = _admin(settings)
    existing = admin.list_topics(timeout=_TIMEOUT_S).topics
    missing = [t for t in topics if t.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(t.name, num_partitions=t.partitions, replication_factor=1, config=t.kafka_config())
                for t in missing
            ]
        )
        for name, future in futures.items():
            try:
                future.result(_TIMEOUT_S)
                console.print(f"kafka: created topic [bold]{name}[/]")
            except Exception as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise InfraError("kafka", f"could not create topic {name}: {exc}") from exc
    for spec in topics:
        if spec.name in existing:
            _update(admin, spec, len(existing[spec.name].partitions))


def _update(admin: AdminClient, spec: TopicSpec, partitions: int) -> None:
    if partitions < spec.partitions:
        admin.create_partitions([NewPartitions(spec.name, spec.partitions)])[spec.name].result(_TIMEOUT_S)
        console.print(f"kafka: {spec.name} grown to {spec.partitions} partitions")
    resource = ConfigResource(ResourceType.TOPIC, spec.name)
    current = admin.describe_configs([resource])[resource].result(_TIMEOUT_S)
    wanted = spec.kafka_config()
    if any(current[k].value != v for k, v in wanted.items()):
        # Incremental alter sets only our keys and leaves operator-set ones alone.
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry

        entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in wanted.items()]
        admin.incremental_alter_configs([ConfigResource(ResourceType.TOPIC, spec.name, incremental_configs=entries)])[
            resource
        ].result(_TIMEOUT_S)
        console.print(f"kafka: {spec.name} config updated to {wanted}")


def describe(settings: InfraSettings) -> dict[str, dict[str, str | int]]:
    """Partitions and declared config keys of each declared topic, as the broker reports them."""
    admin = _admin(settings)
    meta = admin.list_topics(timeout=_TIMEOUT_S).topics
    out: dict[str, dict[str, str | int]] = {}
    for spec in TOPICS:
        if spec.name not in meta:
            continue
        resource = ConfigResource(ResourceType.TOPIC, spec.name)
        config = admin.describe_configs([resource])[resource].result(_TIMEOUT_S)
        out[spec.name] = {"partitions": len(meta[spec.name].partitions)} | {
            k: config[k].value for k in spec.kafka_config()
        }
    return out


def high_watermarks(consumer: Consumer, topic: str) -> dict[int, int]:
    """The high watermark of each partition of `topic`: where its next message will land."""
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}

"""Helpers of the REST broker tests: valid packages, and reading back what reached Kafka."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, Message, TopicPartition

from infra.settings import InfraSettings
from tests import kafka_keyed
from tests.kafka_keyed import Offsets

PACKAGES = "edge.packages.v1"
EXAMPLE = Path(__file__).resolve().parents[2] / "contracts" / "examples" / "edge_package.samples.json"


def package(gateway_id: str, samples: int = 10, **changes: Any) -> dict[str, Any]:
    """A valid edge package of `gateway_id` with fresh ids and current times."""
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text())
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    t0 = int(start.timestamp() * 1_000_000)
    doc.update(
        package_id=str(uuid.uuid4()),
        gateway_id=gateway_id,
        sensor_id=str(uuid.uuid4()),
        sent_at=(start + timedelta(seconds=1, milliseconds=20)).isoformat().replace("+00:00", "Z"),
        window={
            "start": start.isoformat().replace("+00:00", "Z"),
            "end": (start + timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
        },
        samples={
            "t": [t0 + i * (1_000_000 // samples) for i in range(samples)],
            "v": [round(0.1 * i, 3) for i in range(samples)],
        },
    )
    doc.update(changes)
    return doc


def ends(settings: InfraSettings, topic: str) -> Offsets:
    return kafka_keyed.ends(settings.kafka_bootstrap, topic)


def read_since(settings: InfraSettings, topic: str, since: Offsets) -> list[Message]:
    """Every message of `topic` written after `since` (up to the ends now)."""
    until = ends(settings, topic)
    # Only the partitions `since` names (pass `ends(...)` for all of them).
    wanted = {p: until[p] - since[p] for p in since if until[p] > since[p]}
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": "rest-test", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, since[p]) for p in wanted])
    out: list[Message] = []
    deadline = time.monotonic() + 60
    try:
        while sum(wanted.values()) > 0 and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error() is not None:
                continue
            p = message.partition() or 0
            if (message.offset() or 0) < until[p]:
                out.append(message)
                wanted[p] -= 1
    finally:
        consumer.close()
    assert sum(wanted.values()) == 0, f"could not read all of {topic}: {wanted} left"
    return out


def error_body(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    """The JSON error body of `response`, checked: the status, the error code, and no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, object] = response.json()
    assert body["error"] == code, body
    assert "Traceback" not in response.text
    return body

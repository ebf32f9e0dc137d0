"""Fixtures of the integration tests: the running Kafka, an app process of ours (the REST broker), one Spark
session for all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaException
from pyspark.sql import SparkSession

from infra import minio
from infra.rest_broker import Broker, running_broker
from infra.settings import InfraSettings
from jobs.lake.tables import BUCKET
from jobs.spark_session import build_spark

EDGE_TOPICS = ("edge.packages.v1", "edge.metadata.v1", "edge.deadletter.v1")


@pytest.fixture(scope="session")
def kafka(infra_settings: InfraSettings) -> str:
    """The bootstrap of the running Kafka; fails (never skips) when it is down or lacks the edge topics."""
    bootstrap = infra_settings.kafka_bootstrap
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "vigil-test-probe", "log_level": 0})
    try:
        topics, error = consumer.list_topics(timeout=10).topics, ""
    except KafkaException as exc:
        topics, error = {}, str(exc)
    finally:
        consumer.close()
    if error:  # failed outside the except block, so the report is one line, not a chained traceback
        pytest.fail(f"Kafka at {bootstrap} is unreachable ({error}); start the platform with `make up`", pytrace=False)
    missing = [t for t in EDGE_TOPICS if t not in topics]
    if missing:
        pytest.fail(f"topics {missing} missing on {bootstrap}; `make up` creates them", pytrace=False)
    return bootstrap


@pytest.fixture(scope="session")
def broker(platform: InfraSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    limits = {
        "VIGIL_REST_RATE_PER_S": "20",
        "VIGIL_REST_RATE_BURST": "20",
        "VIGIL_REST_MAX_BODY_BYTES": str(2 * 1024 * 1024),
        "VIGIL_REST_MAX_BATCH": "50",
        "VIGIL_REST_REQUEST_TIMEOUT_S": "3",
    }
    with running_broker(platform, tmp_path_factory.mktemp("rest"), **limits) as running:
        yield running


@pytest.fixture(scope="session")
def gateway(broker: Broker) -> tuple[str, str]:
    gateway_id = f"gw-rest-{uuid.uuid4().hex[:6]}"
    return gateway_id, broker.token(gateway_id, "--role", "gateway")


@pytest.fixture
def lake_root(platform: InfraSettings) -> Iterator[str]:
    """A lake root of the test's own under the real `lake` bucket on MinIO (S3A, as the writer uses), emptied after."""
    prefix = f"it-lake-{uuid.uuid4().hex[:8]}"
    yield f"s3a://{BUCKET}/{prefix}"
    client = minio.client(platform)
    for obj in client.list_objects(BUCKET, prefix=f"{prefix}/", recursive=True):
        client.remove_object(BUCKET, obj.object_name)


@pytest.fixture(scope="session")
def spark(platform: InfraSettings) -> Iterator[SparkSession]:
    """One local Spark session (with the jars `make up` resolved) for every test that needs one: starting one
    takes ~20 s here, and Spark keeps a single session per process anyway."""
    session = build_spark("vigil-integration-tests", platform, driver_memory="1g")
    try:
        yield session
    finally:
        session.stop()

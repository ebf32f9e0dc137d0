"""Fixtures of the integration tests: an app process of ours (the REST broker), one Spark session for all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from infra.rest_broker import Broker, running_broker
from infra.settings import InfraSettings
from jobs.spark_session import build_spark


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


@pytest.fixture(scope="session")
def spark(platform: InfraSettings) -> Iterator[SparkSession]:
    """One local Spark session (with the jars `make up` resolved) for every test that needs one: starting one
    takes ~20 s here, and Spark keeps a single session per process anyway."""
    session = build_spark("vigil-integration-tests", platform, driver_memory="1g")
    try:
        yield session
    finally:
        session.stop()

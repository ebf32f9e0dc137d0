"""REST broker → audit.v1 → lake writer → bronze.audit in Trino: every request is on record, none of its data."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from infra.rest_broker import running_broker
from infra.settings import InfraSettings
from tests.e2e.lake_support import query, wait_for
from tests.integration.rest_support import package

pytestmark = pytest.mark.e2e


def test_rest_requests_land_in_bronze_audit(lake_writer: InfraSettings, tmp_path: Path) -> None:
    gateway = f"gw-audit-{uuid.uuid4().hex[:6]}"
    with running_broker(lake_writer, tmp_path) as broker:
        token = broker.token(gateway, "--role", "gateway")
        with broker.client(token) as client:
            sent = [client.post("/topic/edge.packages.v1", json=package(gateway)) for _ in range(2)]
            sent.append(client.post("/topic/edge.packages.v1", json=package("gw-not-mine")))
            sent.append(client.post("/topic/no.such.topic", json=package(gateway)))
    expected = {r.headers["x-request-id"]: r.status_code for r in sent}
    assert sorted(expected.values()) == [202, 202, 403, 404]
    ids = ", ".join(f"'{i}'" for i in expected)
    assert wait_for(lake_writer, f"SELECT count(*) FROM bronze.audit WHERE request_id IN ({ids})", [4]) == [4]
    rows = query(
        lake_writer,
        "SELECT request_id, status, outcome, principal, messages, reason FROM bronze.audit"
        f" WHERE request_id IN ({ids})",
    )
    assert {r[0]: r[1] for r in rows} == expected
    by_status = {r[1]: r for r in rows}
    assert by_status[202][2:5] == ["accepted", gateway, 1]
    assert by_status[403][2:] == ["rejected", gateway, 0, "gateway_forbidden"]
    assert by_status[404][5] == "unknown_topic"

"""streams.parking and streams.clock_reports: the values the agents keep in tables and send to themselves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.clock_reports import ClockReport, ReportGate
from streams.parking import Parked, entry, headers, legacy, source_of, waiting
from streams.pipeline import Source

pytestmark = pytest.mark.unit

TOPIC = "edge.packages.v1"
AT = datetime(2026, 11, 30, 12, 0, 0, 123000, tzinfo=UTC)


def test_a_parked_copy_carries_its_original_source_in_headers() -> None:
    source = Source(TOPIC, 4, 1234, AT)
    sent = headers(source)
    assert sent == {
        "vigil-source-partition": b"4",
        "vigil-source-offset": b"1234",
        "vigil-source-time-ms": str(round(AT.timestamp() * 1000)).encode(),
    }
    assert source_of(sent, TOPIC) == source
    assert source_of(list(sent.items()), TOPIC) == source  # as Kafka hands them back


@pytest.mark.parametrize("bad", [{}, {"vigil-source-partition": b"x", "vigil-source-offset": b"1"}])
def test_headers_that_are_not_ours_raise(bad: dict[str, bytes]) -> None:
    with pytest.raises((KeyError, ValueError)):
        source_of(bad, TOPIC)


def test_waiting_packages_are_their_sensors_own_in_source_order() -> None:
    table = dict(
        [
            entry("s1", b"third", Source(TOPIC, 2, 30, AT)),
            entry("s1", b"first", Source(TOPIC, 2, 7, AT)),
            entry("s10", b"another sensor with the same prefix", Source(TOPIC, 2, 1, AT)),
            entry("s1", b"second", Source(TOPIC, 2, 12, AT)),
        ]
    )
    found = waiting(table.items(), "s1", TOPIC)
    assert [p.original for p in found] == [b"first", b"second", b"third"]
    assert [p.key for p in found] == ["s1/2/7", "s1/2/12", "s1/2/30"]
    assert found[0].source == Source(TOPIC, 2, 7, AT)
    assert waiting(table.items(), "s2", TOPIC) == []


def test_an_entry_is_bounded_by_its_package_not_by_how_many_wait() -> None:
    original = bytes(range(256)) * 4  # any bytes, not only UTF-8
    key, value = entry("s1", original, Source(TOPIC, 0, 1, AT))
    assert key == "s1/0/1"
    assert len(value["original_b64"]) == 4 * -(-len(original) // 3)
    [back] = waiting([(key, value)], "s1", TOPIC)
    assert back.original == original


def test_a_list_left_by_an_older_worker_is_read_under_the_sensor_key() -> None:
    ms = round(AT.timestamp() * 1000)
    old = [{"value": '{"a": 1}', "partition": 3, "offset": 9, "time_ms": ms}]
    assert legacy(old, "s1", TOPIC) == [Parked("s1", b'{"a": 1}', Source(TOPIC, 3, 9, AT))]
    assert legacy(None, "s1", TOPIC) == []
    assert legacy({"original_b64": ""}, "s1", TOPIC) == []


def test_a_clock_report_round_trips_and_refuses_anything_else() -> None:
    report = ClockReport(-2500.25, (1_000, 2_000))
    assert ClockReport.from_bytes(report.to_bytes()) == report
    for raw in (b"not json", b"{}", b'{"offset_ms": 1.0, "window_us": 5}', b"[]"):
        with pytest.raises(ValueError, match=r".+"):
            ClockReport.from_bytes(raw)


def test_the_gate_reports_each_partition_once_an_interval_and_at_once_on_a_crossing() -> None:
    gate = ReportGate(interval_s=1.0)
    assert gate.due("gw/0", breached=False, now=10.0)
    assert not gate.due("gw/0", breached=False, now=10.5)
    assert gate.due("gw/1", breached=False, now=10.5)  # another partition has its own interval
    assert gate.due("gw/0", breached=True, now=10.6)  # crossed the limit: at once
    assert not gate.due("gw/0", breached=True, now=11.0)
    assert gate.due("gw/0", breached=True, now=11.6)
    gate.forget()
    assert gate.due("gw/0", breached=True, now=11.7)

"""What a run sent, counted from delivery reports only, so tests can reconcile it with the topics."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Group
from rich.table import Table

from connectors.gateway.faults import Injected
from connectors.gateway.simulate import Outgoing


class InjectedCounts(BaseModel):
    """Sample faults inside delivered valid packages (duplicates not counted again)."""

    outliers: int = 0
    nulls: int = 0
    stuck_runs: int = 0
    stuck_samples: int = 0
    gaps: int = 0
    gap_samples: int = Field(default=0, description="samples dropped by gaps: missing, not sent")


class ClockTruth(BaseModel):
    gateway_id: str
    offset_ms: float = Field(description="gateway minus true time at the plant start")
    drift_ppm: float
    reports_ntp: bool
    reference: datetime = Field(description="true time at which the error equals offset_ms")


class BadRow(BaseModel):
    file: str
    line: int
    reason: str
    text: str


class SendReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["run", "replay"]
    bootstrap: str
    packages_topic: str
    metadata_topic: str
    seed: int | None = None
    started_at: datetime
    finished_at: datetime
    stopped_by: Literal["count", "duration", "exhausted", "interrupted"]
    target_rate: float | None = Field(description="packages/s asked for; None = as fast as possible")
    achieved_rate: float = Field(description="acknowledged package messages per second of the run")
    metadata_records: int = 0
    packages_total: int = Field(description="acknowledged messages on the packages topic: valid + bad + duplicates")
    valid: int
    valid_by_payload: dict[str, int]
    valid_by_sensor_kind: dict[str, int]
    valid_by_gateway: dict[str, int]
    samples: int = Field(description="samples in delivered valid packages")
    injected: InjectedCounts
    bad: int
    bad_by_reason: dict[str, int]
    duplicates: int
    failed: int = Field(description="messages the broker did not acknowledge (not counted anywhere above)")
    errors: list[str] = Field(default_factory=list, description="first delivery errors, for the operator")
    sensors: int = 0
    plant_start: datetime | None = Field(default=None, description="true time of the first window (run mode)")
    window_s: float | None = Field(default=None, description="collection window of every package (run mode)")
    horizon_s: float | None = Field(default=None, description="when wearing machines reach failure, from the start")
    clocks: list[ClockTruth] = Field(default_factory=list)
    degrading_machines: list[str] = Field(default_factory=list)
    fahrenheit_sensors: list[str] = Field(default_factory=list)
    bad_rows: list[BadRow] = Field(default_factory=list, description="replay: CSV rows that were skipped")


MAX_ERRORS = 20


@dataclass
class Tally:
    """Mutable counters fed by delivery callbacks."""

    valid_by_payload: Counter[str] = field(default_factory=Counter)
    valid_by_sensor_kind: Counter[str] = field(default_factory=Counter)
    valid_by_gateway: Counter[str] = field(default_factory=Counter)
    bad_by_reason: Counter[str] = field(default_factory=Counter)
    samples: int = 0
    duplicates: int = 0
    failed: int = 0
    metadata: int = 0
    injected: Injected = field(default_factory=Injected)
    errors: list[str] = field(default_factory=list)

    def delivered(self, message: Outgoing) -> None:
        if message.category == "valid":
            self.valid_by_payload[message.payload or "samples"] += 1
            self.valid_by_sensor_kind[message.sensor_kind] += 1
            self.valid_by_gateway[message.gateway_id] += 1
            self.samples += message.samples
            self.injected.add(message.injected)
        elif message.category == "bad":
            self.bad_by_reason[message.reason or "unknown"] += 1
        else:
            self.duplicates += 1

    def error(self, what: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(what)

    @property
    def packages_total(self) -> int:
        return sum(self.valid_by_payload.values()) + sum(self.bad_by_reason.values()) + self.duplicates

    def counts(self) -> dict[str, Any]:
        """The counting part of a SendReport."""
        return {
            "metadata_records": self.metadata,
            "packages_total": self.packages_total,
            "valid": sum(self.valid_by_payload.values()),
            "valid_by_payload": dict(sorted(self.valid_by_payload.items())),
            "valid_by_sensor_kind": dict(sorted(self.valid_by_sensor_kind.items())),
            "valid_by_gateway": dict(sorted(self.valid_by_gateway.items())),
            "samples": self.samples,
            "injected": InjectedCounts(**asdict(self.injected)),
            "bad": sum(self.bad_by_reason.values()),
            "bad_by_reason": dict(sorted(self.bad_by_reason.items())),
            "duplicates": self.duplicates,
            "failed": self.failed,
            "errors": list(self.errors),
        }


def render(report: SendReport) -> Group:
    """Rich tables for the terminal: what was sent, and the truth the stream should recover."""
    sent = Table(title=f"vigil-gateway {report.mode}: sent to {report.bootstrap}", show_lines=False)
    sent.add_column("what")
    sent.add_column("count", justify="right")
    seconds = (report.finished_at - report.started_at).total_seconds()
    rows: list[tuple[str, object]] = [
        (f"metadata records ({report.metadata_topic})", report.metadata_records),
        (f"package messages ({report.packages_topic})", report.packages_total),
        ("  valid", report.valid),
        *((f"    payload {k}", v) for k, v in report.valid_by_payload.items()),
        *((f"    sensor {k}", v) for k, v in report.valid_by_sensor_kind.items()),
        ("  bad", report.bad),
        *((f"    {k}", v) for k, v in report.bad_by_reason.items()),
        ("  duplicates", report.duplicates),
        ("samples in valid packages", report.samples),
        *((f"  injected {k}", v) for k, v in report.injected.model_dump().items()),
        ("not acknowledged", report.failed),
        ("CSV rows skipped", len(report.bad_rows)),
        ("seconds / achieved packages per s", f"{seconds:.1f} / {report.achieved_rate:.0f}"),
    ]
    for name, value in rows:
        sent.add_row(name, str(value))
    parts: list[Table | str] = [sent]
    if report.clocks:
        clocks = Table(title="gateway clocks (truth)")
        for column in ("gateway", "offset ms", "drift ppm", "reports NTP"):
            clocks.add_column(column)
        for c in report.clocks:
            clocks.add_row(c.gateway_id, f"{c.offset_ms:+.3f}", f"{c.drift_ppm:+.3f}", "yes" if c.reports_ntp else "no")
        parts.append(clocks)
    if report.degrading_machines:
        parts.append(f"degrading machines: {', '.join(report.degrading_machines)}")
    parts.extend(f"[red]error:[/red] {e}" for e in report.errors)
    parts.extend(f"[yellow]skipped[/yellow] {r.file}:{r.line}: {r.reason}" for r in report.bad_rows[:MAX_ERRORS])
    return Group(*parts)

"""Prometheus metrics of the stream worker (served on VIGIL_STREAMS_METRICS_PORT, loopback)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_IN = Counter("vigil_stream_messages_in_total", "Messages consumed, by topic", ["topic"])
MESSAGES_OUT = Counter("vigil_stream_messages_out_total", "Messages produced, by topic", ["topic"])
DEAD_LETTERS = Counter("vigil_stream_dead_letters_total", "Rejected messages, by reason", ["reason"])
DUPLICATES = Counter("vigil_stream_duplicates_total", "Packages dropped as duplicates")
DEDUPE_EXPIRED = Counter(
    "vigil_stream_dedupe_expired_total", "Package ids deleted from the dedupe table after the horizon"
)
PARKED = Counter("vigil_stream_parked_total", "Packages parked until their sensor's metadata arrives")
PARKED_WAITING = Gauge("vigil_stream_parked_waiting", "Parked packages held until their sensor's metadata arrives")
UNPARKED = Counter("vigil_stream_unparked_total", "Parked packages processed after their metadata arrived")
SAMPLES = Counter("vigil_stream_samples_total", "Samples graded, by quality code", ["quality"])
MISSING = Counter("vigil_stream_missing_samples_total", "Samples missing against the declared sampling rate")
ALERTS = Counter("vigil_stream_alerts_total", "Alerts published, by rule and state", ["rule", "state"])
CLOCK_OFFSET = Gauge("vigil_stream_clock_offset_ms", "Clock offset applied per gateway", ["gateway", "source"])
STAGE_SECONDS = Histogram(
    "vigil_stream_stage_seconds",
    "Time spent per stage",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
LAG = Gauge("vigil_stream_consumer_lag", "Messages not yet consumed, by topic and partition", ["topic", "partition"])

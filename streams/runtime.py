"""What runs around the agents of streams/app.py: the consumer-lag report and the worker's entry point."""

from __future__ import annotations

import sys
from collections.abc import Iterable

import faust
from prometheus_client import start_http_server

from streams import metrics
from streams.changelogs import CHANGELOG_CONFIG, INTERNAL_CONFIG, ensure_app_topics
from streams.settings import StreamSettings

LAG_REPORT_S = 10.0


def report_lag_every(app: faust.App, inputs: Iterable[str], interval_s: float = LAG_REPORT_S) -> None:
    """Set vigil_stream_consumer_lag every `interval_s` for each assigned partition of `inputs`."""
    watched = set(inputs)

    @app.timer(interval=interval_s)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        """Consumer lag per input partition: the broker's high-water mark minus the next offset to read."""
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic not in watched:
                continue
            position = await consumer.position(tp)
            highwater = consumer.highwater(tp)
            if position is not None and highwater is not None:
                metrics.LAG.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))


def run_worker(app: faust.App, settings: StreamSettings, internal_topics: Iterable[str]) -> None:
    """Faust's command line (`python -m streams.app worker`), with metrics and the app's topics made first."""
    if "worker" in sys.argv:
        if not any(arg in sys.argv for arg in ("--with-web", "--without-web")):
            # Faust's worker command turns its web server on whatever the app says (--with-web is its default),
            # listening on 0.0.0.0:6066; metrics are served by prometheus-client instead, on loopback.
            sys.argv.append("--without-web")
        # Faust's consumer snapshots topic metadata once: a changelog it creates in the same instant can be
        # recorded with 0 partitions, failing every table access (PartitionsMismatch) for minutes.
        topics = {table.changelog_topic.get_topic_name(): CHANGELOG_CONFIG for table in app.tables.values()}
        topics.update(dict.fromkeys(internal_topics, INTERNAL_CONFIG))
        ensure_app_topics(settings.kafka_bootstrap, topics, partitions=6)
    start_http_server(settings.streams_metrics_port, addr=settings.streams_metrics_host)
    app.main()

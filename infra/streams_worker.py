"""A stream worker as a subprocess with its own consumer group: for the demo, tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from infra.procs import prune_logs
from infra.settings import InfraSettings
from infra.topics import high_watermarks

KEEP_LOGS = 20  # per family of throw-away workers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Worker:
    def __init__(self, settings: InfraSettings, app_id: str, log: Path, extra_env: dict[str, str]) -> None:
        self.settings, self.app_id, self.log = settings, app_id, log
        self.metrics_port = free_port()
        self.env = {
            **os.environ,
            "VIGIL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "VIGIL_STREAMS_APP_ID": app_id,
            "VIGIL_STREAMS_METRICS_PORT": str(self.metrics_port),
            **extra_env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.app", "worker", "--loglevel=info"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stream worker exited ({self.proc.returncode}); see {self.log}")
            if b"[^Worker]: Ready" in self.log.read_bytes():
                return
            time.sleep(0.5)
        raise RuntimeError(f"stream worker not ready within 120 s; see {self.log}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(60)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


INPUTS = ("edge.packages.v1", "edge.metadata.v1", "edge.parked.v1")
Offsets = dict[str, dict[int, int]]


def end_offsets(settings: InfraSettings, topics: tuple[str, ...] = INPUTS) -> Offsets:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "vigil-offsets", "log_level": 4})
    try:
        return {topic: high_watermarks(consumer, topic) for topic in topics}
    finally:
        consumer.close()


def wait_drained(settings: InfraSettings, app_id: str, timeout_s: float = 180.0) -> None:
    """Wait until worker group `app_id` has committed every input partition up to its end (the inputs and the
    worker's own clock-report topic, ends re-read each round).

    Faust commits an offset only after the producer has flushed everything the event sent (at-least-once), so
    from then on each output of those inputs is in its topic: a test may read the outputs to their end.
    """
    topics = (*INPUTS, f"{app_id}-clock-reports")
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": app_id, "enable.auto.commit": False, "log_level": 4}
    )
    behind: list[str] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ends = {(t, p): end for t in topics for p, end in high_watermarks(consumer, t).items()}
            committed = consumer.committed([TopicPartition(t, p) for t, p in ends], timeout=10)
            behind = [
                f"{tp.topic}[{tp.partition}] at {tp.offset} of {ends[(tp.topic, tp.partition)]}"
                for tp in committed
                if ends[(tp.topic, tp.partition)] > 0 and tp.offset < ends[(tp.topic, tp.partition)]
            ]
            if not behind:
                return
            time.sleep(1.0)
    finally:
        consumer.close()
    raise RuntimeError(f"stream worker {app_id} still behind after {timeout_s:.0f} s: {behind[:6]}")


def start_group_at(settings: InfraSettings, group: str, offsets: Offsets) -> None:
    """Commit `offsets` for `group` before its worker first joins.

    A new group would otherwise start from the earliest offset and first work
    through every earlier run's backlog.
    """
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": group, "enable.auto.commit": False, "log_level": 4}
    )
    try:
        commits = [TopicPartition(t, p, o) for t, parts in offsets.items() for p, o in parts.items()]
        consumer.commit(offsets=commits, asynchronous=False)
    finally:
        consumer.close()


@contextmanager
def stream_worker(
    settings: InfraSettings,
    log_dir: Path,
    app_id: str | None = None,
    *,
    keep_state: bool = False,
    start_at: Offsets | None = None,
    **extra_env: str,
) -> Iterator[Worker]:
    """A running worker; unless `keep_state`, its consumer group is new and its changelog topics are removed after.

    A new group starts at `start_at` (default: the inputs' current ends), not at the earliest offset.
    """
    fresh = app_id is None
    app_id = app_id or f"vigil-streams-it-{uuid.uuid4().hex[:8]}"
    if fresh:
        start_group_at(settings, app_id, start_at if start_at is not None else end_offsets(settings))
    others = _others_after_they_leave(settings, app_id)
    if others:
        # Another worker would emit its own copy of every output and spoil any count made here.
        raise RuntimeError(f"other stream workers are running against {settings.kafka_bootstrap}: {others}")
    log_dir.mkdir(parents=True, exist_ok=True)
    family = app_id.rsplit("-", 1)[0]  # vigil-streams-it, vigil-bench: one log per run, the newest kept
    prune_logs(log_dir, f"{family}-{'?' * 8}.log", KEEP_LOGS)
    worker = Worker(settings, app_id, log_dir / f"{app_id}.log", extra_env)
    try:
        worker.start()
        yield worker
    finally:
        worker.stop()
        if not keep_state:
            delete_app_state(settings, app_id)


def delete_app_state(settings: InfraSettings, app_id: str) -> None:
    # A throw-away worker's changelog topics and consumer group are its own: remove them so runs do not accumulate.
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 4})
    ours = [t for t in admin.list_topics(timeout=10).topics if t.startswith(app_id)]
    if ours:
        for future in admin.delete_topics(ours).values():
            future.result(30)
    for future in admin.delete_consumer_groups([app_id]).values():
        with contextlib.suppress(Exception):  # the group may still be settling; this is only housekeeping
            future.result(30)


def _others_after_they_leave(settings: InfraSettings, app_id: str, timeout_s: float = 75.0) -> list[str]:
    """Other live stream workers, waited for: a worker stopped a moment ago can stay a group member until the
    broker's session timeout (Faust's default is 60 s) if it did not leave the group on its way out."""
    deadline = time.monotonic() + timeout_s
    while True:
        others = [g for g in active_workers(settings) if g != app_id]
        if not others or time.monotonic() >= deadline:
            return others
        time.sleep(1.0)


def active_workers(settings: InfraSettings, topic: str = "edge.packages.v1") -> list[str]:
    """Consumer groups with live members reading `topic`: other stream workers that would also emit outputs."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 4})
    groups = [g.group_id for g in admin.list_consumer_groups().result(30).valid]
    if not groups:
        return []
    live = []
    for group_id, future in admin.describe_consumer_groups(groups).items():
        described = future.result(30)
        if any(tp.topic == topic for m in described.members for tp in m.assignment.topic_partitions):
            live.append(group_id)
    return live

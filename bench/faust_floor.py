"""Two bounds on the stream stage, measured in the same run as the stage and its baseline.

- The Faust floor: a Faust worker with the stage's consumer settings whose
  agent only decodes each package (orjson, as the stage does, or json.loads, as
  the baseline does) — no validation, no state, no output. No worker built
  on Faust can be faster than this.
- The pure stage: validate, process (clock, quality, enrich, alerts) and the
  clean record's Avro encoding, called in this process on the same kind of
  packages, with no Kafka at all.

Run as a module (`python -m bench.faust_floor worker`) it is the floor's worker,
configured by the VIGIL_FLOOR_* environment variables set by `faust_floor()`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bench.workload import Workload
from infra.procs import prune_logs
from infra.settings import REPO_ROOT, InfraSettings
from infra.streams_worker import KEEP_LOGS, delete_app_state, start_group_at

PACKAGES: Final = "edge.packages.v1"
TIMEOUT_S: Final = 300.0


def faust_floor(settings: InfraSettings, since: dict[int, int], count: int, decoder: str) -> list[float]:
    """Run the floor worker over `count` messages of edge.packages.v1 from `since`; each message's done time."""
    app_id = f"vigil-bench-floor-{uuid.uuid4().hex[:8]}"
    start_group_at(settings, app_id, {PACKAGES: since})
    with tempfile.TemporaryDirectory(prefix="vigil-floor-") as tmp:
        out = Path(tmp) / "done.json"
        env = {
            **os.environ,
            "VIGIL_FLOOR_APP_ID": app_id,
            "VIGIL_FLOOR_COUNT": str(count),
            "VIGIL_FLOOR_DECODER": decoder,
            "VIGIL_FLOOR_OUT": str(out),
            "VIGIL_FLOOR_DATADIR": tmp,
            "VIGIL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        }
        command = [sys.executable, "-m", "bench.faust_floor", "worker", "--without-web", "--loglevel=warn"]
        log = settings.log_dir / f"{app_id}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        prune_logs(log.parent, f"vigil-bench-floor-{'?' * 8}.log", KEEP_LOGS)
        with log.open("wb") as sink:
            proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + TIMEOUT_S
                while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.2)
            finally:
                # SIGTERM: Faust stops in order and leaves the group, which a hard exit would leave behind as a
                # live "stream worker" for the next run's check (infra.streams_worker.active_workers).
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if not out.exists():
            raise RuntimeError(f"the Faust floor worker read fewer than {count} messages in {TIMEOUT_S:.0f} s: {log}")
        done: list[float] = json.loads(out.read_text())
    delete_app_state(settings, app_id)
    return done


def pure_stage(load: Workload, count: int) -> dict[str, Any]:
    """Per-package cost of validate + process + encode_clean in this process (no Kafka), in microseconds."""
    from contracts import ClockSource
    from streams.alerts import load_rules
    from streams.errors import Rejection
    from streams.pipeline import SensorState, Source, process
    from streams.validate import validate

    rules = load_rules()
    now = datetime.now(UTC)
    sensors = {d.sensor_id: d for d in load.descriptions(now)}
    messages = load.prebuilt(count)
    states: dict[uuid.UUID, SensorState] = {}
    source = Source(PACKAGES, 0, 0, now)
    started = time.perf_counter()
    for m in messages:
        package = validate(m.value, now)
        if isinstance(package, Rejection):
            raise RuntimeError(f"a benchmark package was rejected: {package}")
        result = process(
            package,
            sensors[package.sensor_id],
            source,
            clock_offset_ms=0.0,
            clock_source=ClockSource.NTP,
            state=states.get(package.sensor_id, SensorState()),
            rules=rules,
            now=now,
        )
        states[package.sensor_id] = result.state
        result.encode_clean()
    per_package = (time.perf_counter() - started) / count
    return {
        "packages": count,
        "us_per_package": round(per_package * 1e6, 1),
        "samples_per_s": round(load.samples / per_package),
    }


def _worker() -> None:
    """The floor's Faust worker (imported only here: building a Faust app at import would slow every bench)."""
    import faust
    import orjson

    from streams.settings import StreamSettings

    settings = StreamSettings()
    count = int(os.environ["VIGIL_FLOOR_COUNT"])
    decode = orjson.loads if os.environ["VIGIL_FLOOR_DECODER"] == "orjson" else json.loads
    out = Path(os.environ["VIGIL_FLOOR_OUT"])
    app = faust.App(
        os.environ["VIGIL_FLOOR_APP_ID"],
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        processing_guarantee="at_least_once",
        topic_partitions=6,
        topic_replication_factor=1,
        consumer_max_fetch_size=settings.streams_fetch_max_bytes,  # as the stage's worker
        web_enabled=False,
        datadir=os.environ["VIGIL_FLOOR_DATADIR"],
    )
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    done: list[float] = []

    @app.agent(app.topic(PACKAGES, **raw), concurrency=1)
    async def floor(stream: Any) -> None:
        async for event in stream.events():
            decode(event.message.value)
            done.append(time.perf_counter())
            if len(done) == count:
                partial = out.with_suffix(".partial")
                partial.write_text(json.dumps(done))
                partial.rename(out)  # the parent sees the whole file or none, then stops this worker

    app.main()


if __name__ == "__main__":
    _worker()

"""Kafka 4.x in KRaft combined mode, run from Maven Central jars (no tarball site is reachable)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from infra import maven
from infra.errors import InfraError
from infra.procs import ProcessSpec, log_file, port_open
from infra.settings import InfraSettings

NAME = "kafka"
_HERE = Path(__file__).resolve().parent / "kafka"
# The broker logs through SLF4J 1.7; the jar's POM leaves the binding to the distribution.
_SLF4J_BINDING = "org.apache.logging.log4j:log4j-slf4j-impl:2.25.4"


def _libs(settings: InfraSettings) -> Path:
    return settings.cache_dir / "kafka" / settings.kafka_version / "libs"


def _home(settings: InfraSettings) -> Path:
    return settings.data_dir / "kafka"


def _java(settings: InfraSettings) -> str:
    if settings.kafka_java_home is not None:
        return str(settings.kafka_java_home / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise InfraError(NAME, "no `java` on PATH; Kafka needs Java 17 or newer (or set VIGIL_KAFKA_JAVA_HOME)")
    return java


def fetch(settings: InfraSettings) -> None:
    maven.copy_with_dependencies(
        NAME, [f"org.apache.kafka:kafka_2.13:{settings.kafka_version}", _SLF4J_BINDING], _libs(settings)
    )


def ports(settings: InfraSettings) -> list[int]:
    return [settings.kafka_port, settings.kafka_controller_port]


def _jvm(settings: InfraSettings) -> list[str]:
    return [
        _java(settings),
        f"-Xms{settings.kafka_heap}",
        f"-Xmx{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={_HERE / 'log4j2.properties'}",
        "-cp",
        f"{_libs(settings)}/*",
    ]


def prepare(settings: InfraSettings) -> ProcessSpec:
    home = _home(settings)
    logs = home / "logs"
    config = home / "server.properties"
    home.mkdir(parents=True, exist_ok=True)
    template = (_HERE / "server.properties.template").read_text()
    config.write_text(
        template.format(
            host=settings.host,
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            log_dirs=logs,
        )
    )
    if not (logs / "meta.properties").exists():
        _format_storage(settings, config)
    return ProcessSpec(name=NAME, argv=[*_jvm(settings), "kafka.Kafka", str(config)], ports=ports(settings), cwd=home)


def _format_storage(settings: InfraSettings, config: Path) -> None:
    # A KRaft cluster id is a base64url UUID without padding, as `kafka-storage random-uuid` prints.
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    log = log_file(settings, NAME)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        result = subprocess.run(
            [*_jvm(settings), "kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id, "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
            check=False,
        )
    if result.returncode != 0:
        raise InfraError(NAME, f"formatting KRaft storage failed (exit {result.returncode})", log)


def probe(settings: InfraSettings) -> bool:
    from confluent_kafka.admin import AdminClient

    if not port_open(settings.host, settings.kafka_port):
        return False  # avoids librdkafka's connection-refused noise while the broker boots
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "socket.timeout.ms": 2000, "log_level": 0})
    metadata = admin.list_topics(timeout=2)
    return len(metadata.brokers) > 0


def after_start(settings: InfraSettings) -> None:
    from infra.topics import ensure_topics

    ensure_topics(settings)

"""What the numbers were measured on: a rate means nothing without the machine, so every result carries this."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import confluent_kafka

from infra.settings import InfraSettings


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _java(settings: InfraSettings) -> str:
    # The broker's JVM: the one `make up` starts Kafka with (kafka_java_home, else `java` on PATH).
    java = str(settings.kafka_java_home / "bin" / "java") if settings.kafka_java_home else "java"
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (done.stderr or done.stdout).splitlines()
    return " / ".join(line.strip() for line in lines[:2]) or "unknown"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to tell a CPU-bound stage from a waiting one."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def describe(settings: InfraSettings) -> dict[str, Any]:
    mem_kb = _first("/proc/meminfo", "MemTotal")
    return {
        "cpu_model": _first("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(mem_kb.split()[0]) / 1024**2, 1) if mem_kb else None,
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "java": _java(settings),
        "kafka": settings.kafka_version,
        "confluent_kafka": _version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "faust_streaming": _version("faust-streaming"),
        "aiokafka": _version("aiokafka"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }

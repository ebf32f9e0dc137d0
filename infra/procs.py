"""Background processes with recorded PIDs.

A service is ours only if its recorded PID is alive *and* its command line
mentions our data folder: a PID reused by the OS is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infra.errors import InfraError
from infra.settings import InfraSettings


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    ports: Sequence[int]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)


def pid_file(settings: InfraSettings, name: str) -> Path:
    return settings.run_dir / f"{name}.pid"


def log_file(settings: InfraSettings, name: str) -> Path:
    return settings.log_dir / f"{name}.log"


def prune_logs(log_dir: Path, pattern: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` - 1 logs matching `pattern` in `log_dir`, making room for one more.

    Throw-away workers (the demo's, benchmarks', tests') write a log each under a fresh name; without this they
    pile up in .data/logs over weeks of runs. Services' own logs have fixed names and never match.
    """
    logs = sorted(log_dir.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = logs[max(keep - 1, 0) :]
    for old in removed:
        old.unlink(missing_ok=True)
    return removed


def recorded(settings: InfraSettings) -> set[str]:
    """Names of every process with a PID file (services and apps), alive or not."""
    return {p.stem for p in settings.run_dir.glob("*.pid")}


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def running_pid(settings: InfraSettings, name: str) -> int | None:
    """The recorded PID of `name` if that process is alive and is ours."""
    path = pid_file(settings, name)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if str(settings.data_dir) not in _cmdline(pid):
        return None
    return pid


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log yet)"


def start(settings: InfraSettings, spec: ProcessSpec) -> int:
    """Start `spec` in its own session unless it already runs; return its PID."""
    pid = running_pid(settings, spec.name)
    if pid is not None:
        return pid
    log = log_file(settings, spec.name)
    taken = [p for p in spec.ports if port_open(settings.host, p)]
    if taken:
        raise InfraError(
            spec.name,
            f"port(s) {taken} on {settings.host} are already used by another process; "
            "stop it or set the matching VIGIL_*_PORT variable",
            log,
        )
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **spec.env}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(spec.argv),
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives `make`, and gets its own process group
        )
    pid_file(settings, spec.name).write_text(f"{proc.pid}\n")
    _children[proc.pid] = proc
    return proc.pid


# Processes this interpreter started: their exit is read from Popen, not guessed from /proc.
_children: dict[int, subprocess.Popen[bytes]] = {}


def _exited(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        rc = child.poll()
        return rc is not None
    return not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def wait_healthy(
    settings: InfraSettings, name: str, pid: int, probe: Callable[[], bool], timeout: float | None = None
) -> None:
    """Poll `probe` until it answers True; fail early if process `pid` died.

    Takes the PID from `start` rather than re-reading /proc/<pid>/cmdline, which
    can still be empty for a moment after the fork.
    """
    deadline = time.monotonic() + (timeout or settings.start_timeout_s)
    log = log_file(settings, name)
    last = "the probe answered 'not healthy'"
    while time.monotonic() < deadline:
        if _exited(pid):
            raise InfraError(name, f"process exited during start-up; last log lines:\n{tail(log)}", log)
        try:
            if probe():
                return
        except Exception as exc:  # noqa: BLE001 - a probe failing is the normal "not yet"; kept for the message
            last = f"the probe failed: {type(exc).__name__}: {exc}"
        time.sleep(1.0)
    waited = timeout or settings.start_timeout_s
    raise InfraError(name, f"no healthy answer within {waited:.0f}s (last: {last}); last log lines:\n{tail(log)}", log)


def stop(settings: InfraSettings, name: str, grace_s: float = 30.0) -> bool:
    """Stop `name` by its recorded PID (TERM, then KILL after `grace_s`). True if it was running."""
    pid = running_pid(settings, name)
    pid_file(settings, name).unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if _exited(pid):
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (OSError, IndexError):
        return True

"""Run a REST broker process of ours on a free loopback port (tests and `make bench-rest`).

Like `infra.streams_worker` for the stream stage: the process gets its own token
database and certificate in a work folder, and is stopped by PID on exit.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from connectors.rest.tls import ensure_self_signed
from infra.settings import InfraSettings
from infra.streams_worker import free_port


@dataclass(frozen=True)
class Broker:
    url: str
    env: dict[str, str]
    log: Path

    def token(self, principal: str, *args: str) -> str:
        """Issue a token with the administrator CLI, as an operator would."""
        done = subprocess.run(
            [sys.executable, "-m", "connectors.rest", "token", "issue", "--principal", principal, "--json", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return str(json.loads(done.stdout)["token"])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "connectors.rest", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def client(self, token: str | None = None, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # The local certificate is self-signed: trust exactly it, not "anything".
        return httpx.Client(base_url=self.url, headers=headers, verify=self.tls(), timeout=timeout)

    def tls(self) -> ssl.SSLContext:
        """Trust exactly the broker's (self-signed) certificate."""
        return ssl.create_default_context(cafile=self.env["VIGIL_REST_CERT_FILE"])


@contextmanager
def running_broker(settings: InfraSettings, workdir: Path, **overrides: str) -> Iterator[Broker]:
    port = free_port()
    env = {
        **os.environ,
        "VIGIL_REST_PORT": str(port),
        "VIGIL_REST_TOKEN_DB": str(workdir / "tokens.sqlite"),
        "VIGIL_REST_CERT_FILE": str(workdir / "rest.crt"),
        "VIGIL_REST_KEY_FILE": str(workdir / "rest.key"),
        **overrides,
    }
    # Made here, before the process starts, so the health probe below can trust it from the first try.
    ensure_self_signed(Path(env["VIGIL_REST_CERT_FILE"]), Path(env["VIGIL_REST_KEY_FILE"]))
    log = workdir / "rest.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "connectors.rest", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    broker = Broker(f"https://127.0.0.1:{port}", env, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the broker exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            try:
                with broker.client() as client:
                    if client.get("/health").status_code == 200:
                        break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker did not answer within 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield broker
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

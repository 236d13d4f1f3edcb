"""Real processes for the proofs: ``safelinks serve`` replicas and a throw-away PostgreSQL cluster.

Replicas run as subprocesses with their settings in the environment, their stderr kept in a log
file beside the test's data; they are stopped with real signals. The PostgreSQL cluster is made
with ``initdb`` in a temporary directory and served on a free port, so a test may stop and start
it without touching the machine's own server; tests that need one skip when the binaries are
missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import TEST_KEYS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    role: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Replicas:
    """Start ``safelinks serve --role …`` processes sharing one configuration; stop them all at the end."""

    workdir: Path
    env: dict[str, str]
    public_url: str = ""
    started: list[Replica] = field(default_factory=list)

    @classmethod
    def on(cls, workdir: Path, database_url: str, **settings: Any) -> Replicas:
        public = settings.pop("public_url", "http://127.0.0.1:3978")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAFELINKS_") and not k.startswith("Microsoft")}
        env.update({
            "SAFELINKS_DATABASE_URL": database_url,
            "SAFELINKS_DATA_DIR": str(workdir / "var"),
            "SAFELINKS_SIGNING_KEYS": TEST_KEYS,
            "SAFELINKS_SIGNING_KEY_ID": "k1",
            "SAFELINKS_PUBLIC_URL": public,
            "SAFELINKS_LOG_LEVEL": "warning",
        })
        for key, value in settings.items():
            name = key if key[:1].isupper() else f"SAFELINKS_{key.upper()}"
            env[name] = str(value)
        return cls(workdir, env, public)

    async def start(self, role: str, **settings: Any) -> Replica:
        port = free_port()
        env = dict(self.env, SAFELINKS_PORT=str(port))
        for key, value in settings.items():
            env[key if key[:1].isupper() else f"SAFELINKS_{key.upper()}"] = str(value)
        log = self.workdir / f"{role}-{port}.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen([sys.executable, "-m", "safelinks", "serve", "--role", role], env=env,
                                    stdout=subprocess.DEVNULL, stderr=sink)
        replica = Replica(role, port, proc, log)
        self.started.append(replica)
        await wait_healthy(replica)
        return replica

    def stop_all(self) -> None:
        for replica in self.started:
            replica.stop()


async def wait_healthy(replica: Replica, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if replica.proc.poll() is not None:
                raise RuntimeError(f"{replica.role} exited with {replica.proc.returncode}: {replica.output()}")
            try:
                async with http.get(f"{replica.base}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{replica.role} did not become healthy: {replica.output()}")


def postgres_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class ThrowawayPostgres:
    """A PostgreSQL cluster of our own in a temporary directory, on a free port."""

    bindir: Path
    datadir: Path
    port: int
    owner: str | None  # the user the server runs as when we are root (initdb refuses root)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.owner:
            command = ["runuser", "-u", self.owner, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    @classmethod
    def create(cls) -> ThrowawayPostgres:
        bindir = postgres_binaries()
        if bindir is None:
            raise FileNotFoundError("no PostgreSQL server binaries under /usr/lib/postgresql")
        root = Path(tempfile.mkdtemp(prefix="safelinks-pg-"))
        owner = None
        if os.geteuid() == 0:
            owner = "postgres"
            shutil.chown(root, user=owner)
        cluster = cls(bindir, root / "data", free_port(), owner)
        cluster._run("initdb", "-D", str(cluster.datadir), "-A", "trust", "-U", "postgres", "--no-sync")
        return cluster

    def start(self) -> None:
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.datadir} "
                "-c fsync=on -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.datadir / "server.log"), "-o", opts, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)

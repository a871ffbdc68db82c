"""Start real ZooKeeper and Redis servers as child processes on free loopback ports.

Used by `zoocast up` and by the test fixtures. ZooKeeper runs from Debian's jar with our own
zoo.cfg: Debian's tickTime of 2000 ms would clamp a 1 s session timeout up to 4 s.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
ZK_LOG4J_DIR = Path("/etc/zookeeper/conf_example")


class MissingDependency(RuntimeError):
    pass


_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A port to listen on, picked below the kernel's ephemeral range.

    Ports the kernel gives outgoing connections come from that range, so a free port picked
    there (bind to 0) can be taken by some client in the moment before our server binds it;
    under a loaded test run that happened. Below the range only listeners compete.
    """
    low, _ = _ephemeral_range()
    for _ in range(500):
        port = random.randint(max(1024, low - 12_000), low - 1)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:  # nothing free below the range: let the kernel choose
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_port(
    host: str, port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {host}:{port} within {timeout}s; see {log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class ZooKeeperServer:
    workdir: Path
    port: int = 0
    tick_ms: int = 100
    proc: subprocess.Popen[bytes] | None = None

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ZooKeeperServer:
        java = shutil.which("java")
        if not java or not ZK_JAR.exists():
            raise MissingDependency(
                "ZooKeeper is not installed: run `sudo apt-get install zookeeper` "
                "(or scripts/setup, which installs everything zoocast needs)"
            )
        self.port = self.port or free_port()
        data = self.workdir / "zk-data"
        data.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "zoo.cfg"
        cfg.write_text(
            f"tickTime={self.tick_ms}\n"
            f"dataDir={data}\n"
            f"clientPort={self.port}\n"
            "clientPortAddress=127.0.0.1\n"
            "admin.enableServer=false\n"
            f"minSessionTimeout={2 * self.tick_ms}\n"
            f"maxSessionTimeout={200 * self.tick_ms}\n"
            "4lw.commands.whitelist=ruok,stat,srvr,cons\n"
        )
        log = self.workdir / "zookeeper.log"
        env = dict(os.environ, ZOO_LOG_DIR=str(self.workdir))
        self.proc = subprocess.Popen(
            [
                java,
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-cp",
                f"{ZK_JAR}:{ZK_LOG4J_DIR}",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                str(cfg),
            ],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        _wait_port("127.0.0.1", self.port, self.proc, "ZooKeeper", log, timeout)
        return self

    def stop(self) -> None:
        if self.proc:
            _stop(self.proc)
            self.proc = None


@dataclass
class RedisServer:
    workdir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> RedisServer:
        exe = shutil.which("redis-server")
        if not exe:
            raise MissingDependency(
                "Redis is not installed: run `sudo apt-get install redis-server` "
                "(or scripts/setup, which installs everything zoocast needs)"
            )
        self.port = self.port or free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "redis.log"
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--protected-mode",
                "yes",
            ],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_port("127.0.0.1", self.port, self.proc, "Redis", log, timeout)
        return self

    def stop(self) -> None:
        if self.proc:
            _stop(self.proc)
            self.proc = None

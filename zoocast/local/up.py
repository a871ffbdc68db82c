"""`zoocast up`: a whole cluster on this machine, every part a child process.

ZooKeeper and Redis run from the system packages with throwaway data under the state directory;
roles run as `zoocast ROLE` children with ZOOCAST_* settings, so they are started exactly as they
would be in a deployment. Ctrl-C (or SIGTERM) stops everything in reverse order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from zoocast.local.servers import MissingDependency, RedisServer, ZooKeeperServer, free_port


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class LocalCluster:
    """Owns every child process of a local cluster; `stop()` is its one teardown."""

    state_dir: Path
    coordinators: int = 2
    transcoders: int = 3
    edges: int = 1
    http_port: int = 8080
    rtmp_port: int = 1935
    ladder: str = "default"
    capacity: float = 2.0
    session_timeout: float = 1.0
    admin_token: str = "local-admin"
    extra_env: dict[str, str] = field(default_factory=dict)
    zk: ZooKeeperServer | None = None
    redis: RedisServer | None = None
    children: list[Child] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    def env(self, node: str, **settings: object) -> dict[str, str]:
        assert self.zk and self.redis
        env = dict(os.environ)
        env.update(
            ZOOCAST_ZK=self.zk.hosts,
            ZOOCAST_REDIS=self.redis.url,
            ZOOCAST_NODE_ID=node,
            ZOOCAST_HOST="127.0.0.1",
            ZOOCAST_BIND="127.0.0.1",
            ZOOCAST_SESSION_TIMEOUT=str(self.session_timeout),
            ZOOCAST_ADMIN_TOKEN=self.admin_token,
            ZOOCAST_LADDER=self.ladder,
            ZOOCAST_CAPACITY=str(self.capacity),
            ZOOCAST_WEBRTC_HOSTS="127.0.0.1",
        )
        env.update({f"ZOOCAST_{k.upper()}": str(v) for k, v in settings.items()})
        env.update(self.extra_env)
        return env

    def spawn(self, role: str, node: str, **settings: object) -> Child:
        log = self.logs / f"{node}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "zoocast.cli", role],
            env=self.env(node, **settings),
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        child = Child(node, proc, log)
        self.children.append(child)
        return child

    def start(self) -> LocalCluster:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.zk = ZooKeeperServer(self.state_dir / "zookeeper").start()
        self.redis = RedisServer(self.state_dir / "redis").start()
        for i in range(self.coordinators):
            self.spawn("coordinator", f"coordinator-{i + 1}", http_port=free_port())
        for i in range(self.transcoders):
            self.spawn(
                "transcoder", f"transcoder-{i + 1}", http_port=free_port(), media_port=free_port()
            )
        for i in range(self.edges):
            self.spawn(
                "edge",
                f"edge-{i + 1}",
                http_port=self.http_port + i,
                rtmp_port=self.rtmp_port + i,
                media_port=free_port(),
            )
        for i in range(self.edges):
            self.wait_http(f"http://127.0.0.1:{self.http_port + i}/readyz", f"edge-{i + 1}")
        return self

    def wait_http(self, url: str, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_children()
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{what} not ready at {url} after {timeout}s; see {self.logs}")

    def check_children(self) -> None:
        for c in self.children:
            if c.proc.poll() is not None and c.proc.returncode not in (0, -signal.SIGKILL):
                raise RuntimeError(f"{c.name} exited with {c.proc.returncode}; see {c.log}")

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def stop(self) -> None:
        for c in reversed(self.children):
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        for c in reversed(self.children):
            try:
                c.proc.wait(10)
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()
        self.children.clear()
        for server in (self.redis, self.zk):
            if server:
                server.stop()


def run_up(
    demo: bool, http_port: int, rtmp_port: int, state_dir: str | None, ladder: str, transcoders: int
) -> int:
    from zoocast.local.demo import create_stream, start_demo_publisher

    root = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="zoocast-up-"))
    cluster = LocalCluster(
        root, http_port=http_port, rtmp_port=rtmp_port, ladder=ladder, transcoders=transcoders
    )
    stop = threading.Event()
    # Explicit for SIGINT too: a process started in the background inherits SIGINT ignored.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        try:
            cluster.start()
        except MissingDependency as exc:
            print(f"zoocast up: {exc}", file=sys.stderr)
            return 2
        assert cluster.zk is not None
        base = f"http://127.0.0.1:{http_port}"
        print(f"zoocast up: cluster running; logs in {cluster.logs}")
        print(f"  dashboard API: {base}/api/cluster")
        if demo:
            key = create_stream(base, cluster.admin_token, "demo")
            rtmp = f"rtmp://127.0.0.1:{rtmp_port}/live/demo?key={key}"
            start_demo_publisher(cluster, rtmp)
            print(f"  demo stream:   {base}/hls/demo/index.m3u8  (LL-HLS)")
            print(f"  over WebRTC:   {base}/whep/demo  (any WHEP player)")
            print(
                f"  publish (OBS): server rtmp://127.0.0.1:{rtmp_port}/live  stream key demo?key={key}"
            )
            print(f"  or over WHIP:  server {base}/whip/demo  bearer token {key}")
            print(f"  status:        zoocast status demo --api {base}")
        print(f"  admin token:   {cluster.admin_token}")
        print("Ctrl-C stops everything.", flush=True)
        while not stop.is_set():
            cluster.check_children()
            stop.wait(1.0)
    finally:
        print("zoocast up: stopping", file=sys.stderr)
        cluster.stop()
    return 0

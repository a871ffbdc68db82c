"""Edge HLS throughput against nginx serving the same bytes from disk, one core each, one run.

A real Redis gets an LL-HLS stream written by the transcoder's own writer (bench/hls_fixture.py:
default-ladder shape, 720p segments of about 400 KB, 0.5 s parts). The edge's HTTP app (the
HLS routes on `cluster.ops.make_app`), served as `zoocast edge` serves it (`edge.http.serve`:
the HLS fast path in front of aiohttp, on uvloop), runs in its own process pinned to core 0;
`--edge-server aiohttp` and `--edge-loop asyncio` take either away, to compare. nginx (`worker_processes 1`, foreground,
pinned to core 0, its own nginx.conf in a temp dir, sendfile, no access log) serves the very
same bytes saved to disk: the 720p media playlist text the edge rendered, and one 720p
segment. A third server, a bare aiohttp handler answering those bytes from a dict (same core),
shows what aiohttp itself allows (on asyncio's loop, as in the runs before the fast path). wrk (`-t1 -c50`) runs on core 1, as does Redis.

Two workloads, each against the three servers in the same run, one after the other, for the
same time:

- segment: `GET /hls/bench/720p/{msn}.m4s` (the edge serves it from its in-process cache
  after the first read from Redis);
- playlist: `GET /hls/bench/720p/index.m3u8` (the edge serves the rendition's shared snapshot,
  read and rendered once; the stream holds still during the run).

Printed: requests/s of each, the share of its core each server used, and the ratios edge/nginx
of requests/s and of requests per CPU-second of the server (what one whole core would serve),
medians of the rounds and then round by round (the spread).
The goals (segment >= 0.6x, playlist >= 0.25x) are judged on the latter: on two shared cores a
server may not get all of core 0, and nginx sending segments at 1-2 GB/s waits for wrk, whose
receiving costs core 1 as much as sending costs nginx, so raw requests/s flatter the slower
server.
`--profile DIR` then records the edge with py-spy during one more run of each workload.

Needs the Debian packages `nginx` and `wrk` (benchmark-only; scripts/setup does not install them).

    .venv/bin/python -m bench.hls_serving [--seconds 10] [--connections 50] [--rounds 3] [--profile DIR]
        [--edge-server fast|aiohttp] [--edge-loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.hls_fixture import (
    LOOPS,
    SERVERS,
    STREAM,
    Writer,
    cpu_seconds,
    start_edge,
    wait_http,
)
from zoocast.local.servers import RedisServer, free_port

SERVER_CORE, CLIENT_CORE = 0, 1
GOALS = {"segment": 0.6, "playlist": 0.25}

NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/iso.segment m4s;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        location ~ \\.m3u8$ {{ add_header Cache-Control "max-age=1"; }}
        location ~ \\.m4s$ {{ add_header Cache-Control "max-age=300, immutable"; }}
    }}
}}
"""


@dataclass(frozen=True)
class WrkResult:
    rps: float
    transfer: str
    errors: str
    server_cpu: float  # CPU seconds the server used during the run
    seconds: float


def missing_tools() -> list[str]:
    need = {"nginx": "nginx", "wrk": "wrk", "taskset": "util-linux"}
    found = {tool: shutil.which(tool) or (Path("/usr/sbin") / tool).exists() for tool in need}
    return [f"{tool} (Debian package `{pkg}`)" for tool, pkg in need.items() if not found[tool]]


def start_nginx(root: Path, port: int) -> subprocess.Popen[bytes]:
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""  # the worker must read our temp dir
    (root / "nginx.conf").write_text(NGINX_CONF.format(user=user, root=root, port=port))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    cmd = [
        "taskset",
        "-c",
        str(SERVER_CORE),
        nginx,
        "-p",
        str(root),
        "-c",
        str(root / "nginx.conf"),
    ]
    proc = subprocess.Popen(cmd, stderr=(root / "nginx.err").open("wb"))
    try:
        wait_http(f"http://127.0.0.1:{port}/hls/{STREAM}/720p/index.m3u8", 10)
    except Exception:
        proc.kill()
        raise RuntimeError(f"nginx did not start; see {root / 'nginx.err'}") from None
    return proc


def server_pids(proc: subprocess.Popen[bytes]) -> list[int]:
    """The process and its children (nginx's worker)."""
    pids = [proc.pid]
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    return pids


def wrk(url: str, seconds: float, connections: int, server: list[int]) -> WrkResult:
    cmd = [
        "taskset", "-c", str(CLIENT_CORE), "wrk", "-t1", f"-c{connections}",
        f"-d{seconds:g}s", "--timeout", "5s", url,
    ]  # fmt: skip
    cpu0 = sum(cpu_seconds(p) for p in server)
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True)
    wall = time.monotonic() - t0
    cpu = sum(cpu_seconds(p) for p in server) - cpu0
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    transfer = re.search(r"Transfer/sec:\s+(\S+)", text).group(1)  # type: ignore[union-attr]
    errors = "; ".join(
        line.strip() for line in text.splitlines() if "Non-2xx" in line or "Socket errors" in line
    )
    return WrkResult(rps, transfer, errors, cpu, wall)


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "py-spy"
    cmd = [str(exe), "record", "--pid", str(pid), "--duration", str(int(seconds)),
           "--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3, help="rounds of the three servers per workload")
    p.add_argument("--profile", type=Path, help="record the edge with py-spy into this dir")
    p.add_argument(
        "--edge-server",
        choices=SERVERS,
        default="fast",
        help="fast: as `zoocast edge` serves (HLS fast path before aiohttp); aiohttp: aiohttp alone",
    )
    p.add_argument("--edge-loop", choices=LOOPS, default="uvloop", help="the edge's event loop")
    args = p.parse_args()
    if missing := missing_tools():
        print("hls_serving needs " + ", ".join(missing) + ": `apt-get install nginx wrk`; "
              "they are benchmark-only and not part of scripts/setup.", file=sys.stderr)  # fmt: skip
        return 2
    if os.cpu_count() is None or (os.cpu_count() or 0) < 2:
        print("hls_serving needs two cores (server on 0, wrk on 1)", file=sys.stderr)
        return 2

    root = Path(tempfile.mkdtemp(prefix="zoocast-bench-serving-"))
    store = RedisServer(root / "redis").start()
    os.sched_setaffinity(store.proc.pid, {CLIENT_CORE})  # type: ignore[union-attr]
    edge = nginx = bare = None
    try:
        client = redis.Redis.from_url(store.url)
        writer = Writer(client)
        writer.until_segments(8)  # a full window of 6, and a part of the next segment
        writer.close()  # the stream holds still: both servers serve the same bytes throughout
        msn, parts = writer.position()
        seg_msn = msn - 2

        edge_port, nginx_port = free_port(), free_port()
        edge = start_edge(
            store.url, edge_port, SERVER_CORE, server=args.edge_server, loop=args.edge_loop
        )
        base = f"http://127.0.0.1:{edge_port}/hls/{STREAM}/720p"
        paths = {"playlist": "index.m3u8", "segment": f"{seg_msn}.m4s"}
        www = root / "www" / "hls" / STREAM / "720p"
        www.mkdir(parents=True)
        sizes = {}
        for what, path in paths.items():
            with urllib.request.urlopen(f"{base}/{path}", timeout=5) as resp:
                body = resp.read()
            (www / path).write_bytes(body)
            sizes[what] = len(body)
        nginx = start_nginx(root, nginx_port)
        bare_port = free_port()
        # asyncio's loop, as in the runs before the fast path: the same reference throughout.
        bare = start_edge("", bare_port, SERVER_CORE, bare_root=root / "www", loop="asyncio")
        for what, path in paths.items():
            with urllib.request.urlopen(
                f"http://127.0.0.1:{nginx_port}/hls/{STREAM}/720p/{path}"
            ) as r:
                assert r.read() == (www / path).read_bytes(), f"nginx serves other bytes for {what}"

        print(f"stream: 720p segment {seg_msn} of {sizes['segment']} bytes, media playlist of "
              f"{sizes['playlist']} bytes ({msn - 6}..{msn - 1} + {parts} part(s), rendition "
              f"reports for 360p and audio); load average before: {os.getloadavg()[0]:.2f}")  # fmt: skip
        print(f"edge: --edge-server {args.edge_server} --edge-loop {args.edge_loop}; bare aiohttp "
              "on asyncio's loop")  # fmt: skip
        print(f"servers pinned to core {SERVER_CORE}, wrk -t1 -c{args.connections} "
              f"-d{args.seconds:g}s and Redis on core {CLIENT_CORE}\n")  # fmt: skip
        results: dict[str, dict[str, list[WrkResult]]] = {}
        for what, path in (("segment", paths["segment"]), ("playlist", paths["playlist"])):
            tail = f"/hls/{STREAM}/720p/{path}"
            urls = {
                "edge": (f"{base}/{path}", server_pids(edge)),
                "bare": (f"http://127.0.0.1:{bare_port}{tail}", server_pids(bare)),
                "nginx": (f"http://127.0.0.1:{nginx_port}{tail}", server_pids(nginx)),
            }
            got: dict[str, list[WrkResult]] = {name: [] for name in urls}
            for url, pids in urls.values():
                wrk(url, 2, args.connections, pids)  # warm-up: caches, connections
            for _ in range(args.rounds):
                for name, (url, pids) in urls.items():
                    r = wrk(url, args.seconds, args.connections, pids)
                    got[name].append(r)
                    print(f"  {what:8} {name:5} {r.rps:10.0f} req/s  {r.transfer:>9}/s  "
                          f"server CPU {r.server_cpu / r.seconds:4.0%} of a core"
                          + (f"  ({r.errors})" if r.errors else ""))  # fmt: skip
            results[what] = got

        # Requests per CPU-second of the server: what one whole core would serve. On two
        # shared cores a server may not get all of core 0 (other processes), or may wait for
        # wrk (at 1-2 GB/s, receiving segments costs wrk's core as much as sending costs
        # nginx's), so raw req/s can flatter whoever is slower; the goals are judged on this.
        print("\nworkload   req/s: edge   nginx  edge/nginx | req per server CPU-s: edge   nginx"
              "  edge/nginx  goal            | bare/nginx")  # fmt: skip
        met = True
        for what, got in results.items():
            rps = {k: statistics.median(r.rps for r in got[k]) for k in got}
            eff = {k: statistics.median(r.rps * r.seconds / r.server_cpu for r in got[k])
                   for k in got}  # fmt: skip
            raw = rps["edge"] / rps["nginx"]
            ratio, goal = eff["edge"] / eff["nginx"], GOALS[what]
            met &= ratio >= goal
            verdict = "met" if ratio >= goal else "NOT met"
            print(f"{what:9} {rps['edge']:11.0f} {rps['nginx']:7.0f} {raw:10.2f}x |"
                  f"{eff['edge']:26.0f} {eff['nginx']:7.0f} {ratio:10.2f}x  >= {goal}x "
                  f"{verdict:7} | {eff['bare'] / eff['nginx']:9.2f}x")  # fmt: skip
        print(
            "(medians of the rounds; bare: an aiohttp handler answering the same bytes from a "
            "dict, same core: what aiohttp itself allows)"
        )
        # The spread: edge/nginx per CPU-second within each round (the servers of a round ran
        # one after the other, so they met about the same load from the rest of the machine).
        for what, got in results.items():
            per_round = [
                (e.rps * e.seconds / e.server_cpu) / (n.rps * n.seconds / n.server_cpu)
                for e, n in zip(got["edge"], got["nginx"], strict=True)
            ]
            print(f"{what}: edge/nginx per server CPU-s, round by round: "
                  + ", ".join(f"{x:.2f}x" for x in per_round))  # fmt: skip

        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            for what, path in paths.items():
                out = args.profile / f"edge-{what}.txt"
                spy = py_spy(edge.pid, args.seconds, out)
                time.sleep(0.5)
                wrk(f"{base}/{path}", args.seconds, args.connections, server_pids(edge))
                spy.wait(args.seconds + 30)
                print(f"py-spy profile of the edge serving {what}s: {out}")
        return 0 if met else 1
    finally:
        for proc in (edge, bare, nginx):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM if proc is edge else signal.SIGQUIT)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        store.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

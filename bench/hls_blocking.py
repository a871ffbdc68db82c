"""5,000 concurrent blocked LL-HLS playlist requests held by one edge, against 500, one run.

A real Redis gets an LL-HLS stream written by the transcoder's own writer (bench/hls_fixture.py:
default-ladder shape, 0.5 s parts; 4 s segments by default, so that the edge's hold limit of
three target durations, 12 s, leaves room to open thousands of connections). One edge HTTP app
(the HLS routes on `cluster.ops.make_app`, as `zoocast edge` serves them) runs in its own
process pinned to core 0; the client (aiohttp, connector limit 0, fd limit raised) and the
writer run here, on core 1.

Each round asks for the next part, not yet written:
`GET /hls/bench/720p/index.m3u8?_HLS_msn=M&_HLS_part=P`, N times over N connections, opened
in batches until the edge reports all N held (its own count of waiting requests). Then the
writer writes that part (one fenced batch and one pub/sub message, as a worker does), and the
round times how long until all N answers are in: every one must be 200 and list the part.

Printed for each N: the edge's RSS before and while holding (and per held request), the time
to open and hold them, the time from the part's write to the last answer, the Redis
connections the edge had open, and the ratio of the 5,000 round to the 500 one (the reference:
the same workload, ten times smaller; 10x would be linear).

    .venv/bin/python -m bench.hls_blocking [--requests 5000] [--small 500] [--segment-seconds 4]
        [--pool edge|queue|redis-default] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import redis

from bench.hls_fixture import (
    POOLS,
    STREAM,
    Writer,
    cpu_seconds,
    raise_fd_limit,
    rss_kb,
    start_edge,
)
from zoocast.local.servers import RedisServer, free_port

SERVER_CORE, CLIENT_CORE = 0, 1
BATCH = 100  # connections opened at a time: under aiohttp's listen backlog of 128
OPEN_TIMEOUT = 60.0  # seconds to get every request of a round held
ANSWER_TIMEOUT = 120.0  # seconds from the part's write to the last answer


@dataclass(frozen=True)
class Round:
    n: int
    held: int  # the most requests the edge held at once (its own count)
    early: Counter[int]  # statuses of requests answered before the part existed
    after: Counter[str]  # answers after the part's write: "200" (listing the part) or status
    rss_before_kb: int
    rss_held_kb: int
    open_s: float
    answer_s: float
    first_answer_s: float
    redis_clients_held: int
    redis_clients_after: int
    edge_cpu_s: float  # CPU the edge used from the write to the last answer
    open_cpu_s: float  # CPU the edge used while the requests were opened

    @property
    def ok(self) -> int:
        return self.after["200"]


async def _metrics(session: aiohttp.ClientSession, port: int) -> dict[str, float]:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        out[name.removeprefix("zoocast_")] = float(value)
    return out


def _redis_clients(client: redis.Redis) -> int:
    info = client.info("clients")
    return int(info["connected_clients"])


async def one_round(
    n: int, writer: Writer, client: redis.Redis, edge: subprocess.Popen[bytes], port: int
) -> Round:
    msn, parts = writer.position()
    url = f"http://127.0.0.1:{port}/hls/{STREAM}/720p/index.m3u8?_HLS_msn={msn}&_HLS_part={parts}"
    want = f"part/1/{msn}.{parts}.m4s"
    timeout = aiohttp.ClientTimeout(total=OPEN_TIMEOUT + ANSWER_TIMEOUT + 30)
    done_at: list[float] = []
    early: Counter[int] = Counter()
    written = False

    async def fetch(session: aiohttp.ClientSession) -> str:
        async with session.get(url) as resp:
            body = await resp.text()
        done_at.append(time.monotonic())
        if not written:
            early[resp.status] += 1
            return "early"
        return "200" if resp.status == 200 and want in body else str(resp.status)

    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session,
        aiohttp.ClientSession() as probe,
    ):
        base = (await _metrics(probe, port))["hls_waiting"]
        rss_before = rss_kb(edge.pid)
        open_cpu0 = cpu_seconds(edge.pid)
        t0 = time.monotonic()
        tasks: list[asyncio.Task[str]] = []
        held = 0
        while len(tasks) < n:
            batch = min(BATCH, n - len(tasks))
            tasks += [asyncio.create_task(fetch(session)) for _ in range(batch)]
            while True:
                held = int((await _metrics(probe, port))["hls_waiting"] - base)
                if held + early.total() >= len(tasks):
                    break
                if time.monotonic() - t0 > OPEN_TIMEOUT:
                    raise TimeoutError(f"{held} of {len(tasks)} held after {OPEN_TIMEOUT} s")
                await asyncio.sleep(0.02)
        open_s = time.monotonic() - t0
        open_cpu = cpu_seconds(edge.pid) - open_cpu0
        rss_held = rss_kb(edge.pid)
        clients_held = _redis_clients(client)
        cpu0 = cpu_seconds(edge.pid)
        written = True  # from here on answers are expected (the write may wake some at once)
        t_write = time.monotonic()
        await asyncio.to_thread(writer.next_part)
        results = await asyncio.wait_for(asyncio.gather(*tasks), ANSWER_TIMEOUT)
        t_end = time.monotonic()
        edge_cpu = cpu_seconds(edge.pid) - cpu0
        clients_after = _redis_clients(client)
    after = Counter(r for r in results if r != "early")
    late = [t for t in done_at if t >= t_write]
    return Round(
        n=n,
        held=held,
        early=early,
        after=after,
        rss_before_kb=rss_before,
        rss_held_kb=rss_held,
        open_s=open_s,
        answer_s=t_end - t_write,
        first_answer_s=(min(late) - t_write) if late else float("nan"),
        redis_clients_held=clients_held,
        redis_clients_after=clients_after,
        edge_cpu_s=edge_cpu,
        open_cpu_s=open_cpu,
    )


def show(r: Round) -> None:
    per = (r.rss_held_kb - r.rss_before_kb) * 1024 / max(1, r.held)
    failed = "" if not r.early else f" ({dict(r.early)} answered before the part existed)"
    others = {k: v for k, v in r.after.items() if k != "200"}
    print(
        f"{r.n:6} requests: {r.held} held{failed}, in {r.open_s:5.2f} s (edge CPU "
        f"{r.open_cpu_s:5.2f} s); edge RSS "
        f"{r.rss_before_kb / 1024:6.1f} -> {r.rss_held_kb / 1024:6.1f} MiB "
        f"({per / 1024:5.1f} KiB per held request)\n"
        f"{'':6}  part written -> first answer {r.first_answer_s * 1000:6.1f} ms, last answer "
        f"{r.answer_s:6.3f} s: {r.ok} x 200 listing the part"
        + (f", others {others}" if others else "")
        + f"; edge CPU {r.edge_cpu_s:5.2f} s; Redis clients {r.redis_clients_held} while held, "
        f"{r.redis_clients_after} after"
    )


def py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "py-spy"
    cmd = [str(exe), "record", "--pid", str(pid), "--rate", "100", "--format", "raw",
           "--output", str(out), "--nonblocking"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="zoocast-bench-blocking-"))
    store = RedisServer(root / "redis").start()  # inherits our raised fd limit
    edge = None
    try:
        client = redis.Redis.from_url(store.url)
        writer = Writer(client, segment_seconds=args.segment_seconds)
        writer.until_segments(3)
        port = free_port()
        edge = start_edge(store.url, port, SERVER_CORE, pool=args.pool)
        print(f"edge ({args.pool} Redis pool) on core {SERVER_CORE} (pid {edge.pid}), client and writer on core "
              f"{CLIENT_CORE}; {args.segment_seconds} s segments, 0.5 s parts; hold limit "
              f"{3 * args.segment_seconds} s; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        await one_round(50, writer, client, edge, port)  # warm-up: subscription, code paths
        rounds = {}
        for n in (args.small, args.requests):
            spy = None
            if args.profile is not None and n == args.requests:
                spy = py_spy(edge.pid, args.profile)
                await asyncio.sleep(1.0)
            rounds[n] = await one_round(n, writer, client, edge, port)
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                spy.wait(30)
                print(f"py-spy profile of the edge during the {n} round: {args.profile}")
            show(rounds[n])
        writer.close()
        small, big = rounds[args.small], rounds[args.requests]
        ratio = big.answer_s / small.answer_s
        size = args.requests / args.small
        print(
            f"\ntime to answer all after the part's write: {args.requests} held "
            f"{big.answer_s:.3f} s vs {args.small} held {small.answer_s:.3f} s: "
            f"{ratio:.2f}x for {size:g}x the requests"
        )
        held_all = big.ok == args.requests and small.ok == args.small
        print(f"all {args.requests} held and answered 200 with the part: "
              f"{'yes' if held_all else 'NO'}")  # fmt: skip
        return 0 if held_all else 1
    finally:
        if edge is not None and edge.poll() is None:
            edge.send_signal(signal.SIGTERM)
            try:
                edge.wait(5)
            except subprocess.TimeoutExpired:
                edge.kill()
                edge.wait()
        store.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--small", type=int, default=500, help="the reference round's size")
    p.add_argument("--segment-seconds", type=int, default=4)
    p.add_argument(
        "--pool",
        choices=POOLS,
        default="edge",
        help="the edge's Redis pool: as edge/app.py makes it (default); 100 connections "
        "waited for without limit; redis-py's default (the edge's until b356ecd)",
    )
    p.add_argument("--profile", type=Path, help="record the edge with py-spy (largest round)")
    args = p.parse_args()
    limit = raise_fd_limit()
    if limit < args.requests + 1000:
        print(f"the fd limit ({limit}) is too low for {args.requests} connections", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {CLIENT_CORE})
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())

"""The `zoocast` command: one sub-command per role, plus local-cluster and admin helpers."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from cluster.config import Settings, load
from cluster.errors import ZoocastError

ROLES = ("coordinator", "transcoder", "edge")
DEFAULT_API = "http://127.0.0.1:8080"


def _role_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML settings file (see zoocast.sample.toml)")
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        p.add_argument(flag, dest=f.name, default=None, help=f"overrides ZOOCAST_{f.name.upper()}")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {f.name: getattr(args, f.name, None) for f in fields(Settings)}
    return load(args.config, overrides=overrides)


def _run_role(role: str, settings: Settings) -> int:
    from cluster import logs
    from cluster.runtime import run

    logs.setup(role, settings.node_id, settings.log_level, settings.log_json)
    if role == "coordinator":
        from coordinator.app import main as role_main
    elif role == "transcoder":
        from transcoder.node import main as role_main
    else:
        from edge.app import main as role_main
    with contextlib.suppress(KeyboardInterrupt):
        run(role_main(settings), uvloop=role == "edge")
    return 0


def _api_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--api", default=os.environ.get("ZOOCAST_API", DEFAULT_API), help="an edge's base URL"
    )
    p.add_argument("--token", default=os.environ.get("ZOOCAST_ADMIN_TOKEN", ""), help="admin token")


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _status(args: argparse.Namespace) -> int:
    from zoocast.local.demo import api

    if args.stream:
        _print(api(args.api, "GET", f"/api/streams/{args.stream}"))
    else:
        _print(api(args.api, "GET", "/api/cluster"))
    return 0


def _stream(args: argparse.Namespace) -> int:
    from zoocast.local.demo import api

    if args.action == "create":
        body: dict[str, Any] = {"stream": args.stream}
        if args.profile:
            body["profile"] = args.profile
        if args.ladder:
            # A JSON ladder spec, inline or from a file (@path).
            text = Path(args.ladder[1:]).read_text() if args.ladder.startswith("@") else args.ladder
            try:
                body["ladder"] = json.loads(text)
            except ValueError as exc:
                raise RuntimeError(f"--ladder is not JSON: {exc}") from None
        _print(api(args.api, "POST", "/api/streams", args.token, body))
    elif args.action == "list":
        _print(api(args.api, "GET", "/api/streams"))
    else:
        api(args.api, "DELETE", f"/api/streams/{args.stream}", args.token)
    return 0


def _drain(args: argparse.Namespace) -> int:
    from zoocast.local.demo import api

    _print(api(args.api, "POST", f"/api/transcoders/{args.node}/drain", args.token))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zoocast", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run a whole cluster on this machine")
    up.add_argument("--demo", action="store_true", help="create and publish a demo stream")
    up.add_argument("--http-port", type=int, default=8080)
    up.add_argument("--rtmp-port", type=int, default=1935)
    up.add_argument("--transcoders", type=int, default=3)
    up.add_argument("--ladder", default="default", help="ladder profile: default | tiny")
    up.add_argument("--state-dir", help="where logs and server data go (default: a new temp dir)")
    for role in ROLES:
        _role_flags(sub.add_parser(role, help=f"run one {role}"))
    st = sub.add_parser("status", help="cluster overview, or one stream's placement and moves")
    st.add_argument("stream", nargs="?")
    _api_args(st)
    sm = sub.add_parser("stream", help="create, list or delete streams")
    sm.add_argument("action", choices=["create", "list", "delete"])
    sm.add_argument("stream", nargs="?")
    sm.add_argument(
        "--profile", help="built-in ladder profile for a new stream: default | hd | tiny"
    )
    sm.add_argument(
        "--ladder",
        help='the stream\'s own ladder as JSON or @file, e.g. {"rungs": [{"height": 720, "video_kbps": 2500}]}',
    )
    _api_args(sm)
    dr = sub.add_parser("drain", help="move every stream off a transcoder")
    dr.add_argument("node")
    _api_args(dr)
    sub.add_parser(
        "publish-test",
        help="publish a synthetic test stream (RTMP, or WHIP with --whip URL)",
        add_help=False,
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["publish-test"]:
        if any(a == "--whip" or a.startswith("--whip=") for a in argv):
            from zoocast.harness.whip_publisher import main_whip_publish_test

            return main_whip_publish_test(argv[1:])
        from zoocast.harness.publisher import main_publish_test

        return main_publish_test(argv[1:])
    args = parser().parse_args(argv)
    try:
        if args.command == "up":
            from zoocast.local.up import run_up

            return run_up(
                args.demo,
                args.http_port,
                args.rtmp_port,
                args.state_dir,
                args.ladder,
                args.transcoders,
            )
        if args.command in ROLES:
            return _run_role(args.command, _settings(args))
        if args.command == "status":
            return _status(args)
        if args.command == "stream":
            if args.action != "list" and not args.stream:
                raise SystemExit("zoocast stream: a stream id is required")
            return _stream(args)
        if args.command == "drain":
            return _drain(args)
    except (ZoocastError, RuntimeError) as exc:
        print(f"zoocast: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""Settings precedence and validation; the shipped sample must load and match the defaults."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from cluster.config import Settings, load
from cluster.errors import BadRequest

ROOT = Path(__file__).resolve().parents[2]


def test_sample_lists_every_setting_with_its_default() -> None:
    sample = load(ROOT / "zoocast.sample.toml", env={})
    defaults = Settings(node_id=sample.node_id)
    assert sample == defaults
    text = (ROOT / "zoocast.sample.toml").read_text()
    for f in fields(Settings):
        assert f"{f.name} =" in text, f"{f.name} missing from the sample"


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "z.toml"
    cfg.write_text('http_port = 81\nrtmp_port = 82\nmedia_port = 83\nnode_id = "n1"\n')
    s = load(
        cfg,
        env={"ZOOCAST_RTMP_PORT": "92", "ZOOCAST_MEDIA_PORT": "93"},
        overrides={"media_port": 103},
    )
    assert (s.http_port, s.rtmp_port, s.media_port, s.node_id) == (81, 92, 103, "n1")


def test_env_types_are_coerced() -> None:
    s = load(
        env={"ZOOCAST_SESSION_TIMEOUT": "1.5", "ZOOCAST_LOG_JSON": "true", "ZOOCAST_NODE_ID": "a"}
    )
    assert s.session_timeout == 1.5 and s.log_json is True


@pytest.mark.parametrize(
    "env",
    [
        {"ZOOCAST_HTTP_PORT": "seventy"},
        {"ZOOCAST_HTTP_PORT": "70000"},
        {"ZOOCAST_NODE_ID": "../etc"},
        {"ZOOCAST_LADDER": "8k"},
        {"ZOOCAST_SESSION_TIMEOUT": "0"},
    ],
)
def test_bad_values_are_refused_with_a_clear_error(env: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        load(env=env)


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "z.toml"
    cfg.write_text("htp_port = 1\n")
    with pytest.raises(BadRequest, match="htp_port"):
        load(cfg, env={})

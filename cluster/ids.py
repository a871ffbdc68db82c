"""Identifier validation: raw strings in, checked ids out (before any reaches a znode path or Redis key)."""

from __future__ import annotations

import re
import secrets

from cluster.errors import BadRequest

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Node ids may carry dots (host names) but never a slash, which would escape the tree.
_NODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_RENDITION = re.compile(r"[a-z0-9_]{1,16}")


def stream_id(raw: str) -> str:
    if not isinstance(raw, str) or not _ID.fullmatch(raw):
        raise BadRequest(f"invalid stream id {raw!r}: expected [A-Za-z0-9_-]{{1,64}}")
    return raw


def node_id(raw: str) -> str:
    if not isinstance(raw, str) or not _NODE.fullmatch(raw) or raw in {".", ".."}:
        raise BadRequest(f"invalid node id {raw!r}: expected [A-Za-z0-9_.-]{{1,64}}")
    return raw


def rendition_id(raw: str) -> str:
    if not isinstance(raw, str) or not _RENDITION.fullmatch(raw):
        raise BadRequest(f"invalid rendition {raw!r}")
    return raw


def new_stream_key() -> str:
    """A stream key with 128 bits of entropy, safe in a URL query string."""
    return secrets.token_urlsafe(16)

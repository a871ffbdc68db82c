"""The epoch-fencing script against a real Redis."""

from __future__ import annotations

import pytest
import redis

from cluster.errors import Fenced
from cluster.hot import keys
from cluster.hot.fence import FencedBatch, Stale, run_sync


def _segment(msn: int) -> FencedBatch:
    st = keys.state("s1", "r1")
    return (
        FencedBatch()
        .guard_hash_below(st, "msn", msn)
        .set(keys.segment("s1", "r1", msn), b"data%d" % msn, ttl_ms=60_000)
        .hset(st, {"msn": msn})
    )


def test_newer_epoch_takes_over_and_older_is_refused(redis_sync: redis.Redis) -> None:
    ek = keys.epoch("s1")
    assert run_sync(redis_sync, _segment(0), ek, 1) == 1
    assert run_sync(redis_sync, _segment(1), ek, 2) == 2
    with pytest.raises(Fenced) as info:
        run_sync(redis_sync, _segment(2), ek, 1)
    assert info.value.stored_epoch == 2
    assert redis_sync.get(keys.segment("s1", "r1", 2)) is None
    assert redis_sync.hget(keys.state("s1", "r1"), "msn") == b"1"


def test_sequence_never_goes_backwards(redis_sync: redis.Redis) -> None:
    ek = keys.epoch("s1")
    run_sync(redis_sync, _segment(5), ek, 1)
    with pytest.raises(Stale) as info:
        run_sync(redis_sync, _segment(5), ek, 1)
    assert info.value.current == 5
    with pytest.raises(Stale):
        run_sync(redis_sync, _segment(3), ek, 2)
    # A refused batch leaves nothing behind, not even the epoch bump.
    assert redis_sync.get(ek) == b"1"
    assert redis_sync.get(keys.segment("s1", "r1", 3)) is None


def test_unknown_command_is_rejected_before_sending() -> None:
    batch = FencedBatch()._op("FLUSHALL", [], [])
    with pytest.raises(ValueError):
        batch.script_args("k", 1)

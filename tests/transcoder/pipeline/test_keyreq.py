"""Keyframe requests: at most one forced IDR per interval, requests in between dropped."""

from __future__ import annotations

from transcoder.pipeline.keyreq import KeyLimiter, KeyRequests


def test_the_limiter_allows_one_request_per_interval() -> None:
    limiter = KeyLimiter(0.5)
    assert limiter.allow(10.0)
    assert not limiter.allow(10.01)  # 10 ms later: the IDR already on its way answers it
    assert not limiter.allow(10.49)
    assert limiter.allow(10.5)
    assert not limiter.allow(10.6)
    assert limiter.allow(20.0)


def test_requests_are_taken_once_and_rate_limited() -> None:
    keys = KeyRequests(0.5)
    assert not keys.take(0)
    assert keys.request(now=1.0)
    assert not keys.request(now=1.01)
    assert keys.take(0)
    assert not keys.take(0)  # one IDR per accepted request
    assert not keys.request(now=1.2)
    assert not keys.take(0)
    assert keys.request(now=1.6)
    assert keys.take(0)


def test_an_idr_at_a_publisher_time_is_due_once_at_or_after_it() -> None:
    keys = KeyRequests(0.5)
    keys.at(4_500_000)
    assert not keys.take(4_466_666)
    assert keys.take(4_533_333)
    assert not keys.take(4_600_000)
    assert keys.request(now=1.0)  # not rate-limited by it, nor limiting requests
    assert keys.take(4_666_666)

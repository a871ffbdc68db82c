"""The command line's client side: a clear message instead of a traceback when the API is away."""

from __future__ import annotations

import pytest

from zoocast.cli import main
from zoocast.local.servers import free_port


def test_status_without_a_running_edge_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["status", "demo", "--api", url]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the edge API at {url}" in err
    assert "Traceback" not in err

"""ICE for aiortc as zoocast needs it: announced host addresses and no STUN unless configured.

aioice gathers host candidates from the machine's interfaces and leaves 127.0.0.1 out, and an
RTCPeerConnection built without a configuration asks a public STUN server. Neither suits a
cluster that announces the address it is reached at (a public one behind NAT, loopback on one
machine), so the process says once which host addresses its peer connections announce.
"""

from __future__ import annotations

from collections.abc import Sequence

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

_hosts: list[str] | None = None


def announce_hosts(hosts: Sequence[str]) -> None:
    """Every peer connection of this process gathers exactly these host candidates from now on.

    Process-wide because aioice reads its interface list through one module-level function.
    """
    global _hosts
    if not hosts:
        raise ValueError("announce_hosts needs at least one address")
    _hosts = list(hosts)
    aioice.ice.get_host_addresses = _announced


def _announced(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    assert _hosts is not None
    return [h for h in _hosts if (":" in h and use_ipv6) or (":" not in h and use_ipv4)]


def configuration(stun: Sequence[str] = ()) -> RTCConfiguration:
    """An explicit configuration: with no STUN servers aiortc would fall back to a public one."""
    return RTCConfiguration(iceServers=[RTCIceServer(urls=list(stun))] if stun else [])

"""Epoch-fenced writes to Redis.

Every write of media data goes through one Lua script. The script compares the writer's epoch
with the stored one and refuses the whole batch if the writer is older, so a transcoder that was
paused or partitioned (a zombie) can never overwrite what its successor wrote. A batch may also
carry guards (a hash field must stay below a value), which keep media sequence numbers from going
backwards. Epochs are small integers (Lua numbers are doubles: exact below 2**53).

Build a batch with `FencedBatch`, run it with `run_sync` (transcoder workers) or `run_async`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio

from cluster.errors import Fenced, ZoocastError

LUA = r"""
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
local mine = tonumber(ARGV[1])
if mine < stored then return {'fenced', tostring(stored)} end
local n = tonumber(ARGV[2])
local a, k, ops = 3, 2, {}
for i = 1, n do
  local name, nk, na = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  local args = {}
  for j = 1, nk do args[#args + 1] = KEYS[k]; k = k + 1 end
  for j = 1, na do args[#args + 1] = ARGV[a]; a = a + 1 end
  ops[i] = {name, args}
end
-- Guards run before any write: a batch is applied whole or not at all.
for _, op in ipairs(ops) do
  if op[1] == 'GUARD_HLT' then
    local cur = tonumber(redis.call('HGET', op[2][1], op[2][2]) or '-1')
    if tonumber(op[2][3]) <= cur then return {'stale', tostring(cur)} end
  end
end
if mine > stored then redis.call('SET', KEYS[1], ARGV[1]) end
for _, op in ipairs(ops) do
  if op[1] ~= 'GUARD_HLT' then redis.call(op[1], unpack(op[2])) end
end
return {'ok', ARGV[1]}
"""

_WRITES = {"SET", "RPUSH", "LTRIM", "HSET", "PUBLISH", "PEXPIRE", "DEL"}


class Stale(ZoocastError):
    """A guard refused the batch: the sequence it would write is not newer than the stored one."""

    status = 409
    code = "stale"

    def __init__(self, current: int) -> None:
        super().__init__(f"stored sequence is already {current}")
        self.current = current


@dataclass
class FencedBatch:
    """Writes to apply atomically if, and only if, the writer's epoch is still current."""

    keys: list[str] = field(default_factory=list)
    args: list[bytes | str | int] = field(default_factory=list)
    count: int = 0

    def _op(self, name: str, keys: list[str], args: list[bytes | str | int]) -> FencedBatch:
        self.args += [name, len(keys), len(args), *args]
        self.keys += keys
        self.count += 1
        return self

    def set(self, key: str, value: bytes | str, ttl_ms: int | None = None) -> FencedBatch:
        extra: list[bytes | str | int] = ["PX", int(ttl_ms)] if ttl_ms else []
        return self._op("SET", [key], [value, *extra])

    def rpush(self, key: str, *values: bytes | str) -> FencedBatch:
        return self._op("RPUSH", [key], list(values))

    def ltrim(self, key: str, start: int, stop: int) -> FencedBatch:
        return self._op("LTRIM", [key], [start, stop])

    def hset(self, key: str, mapping: dict[str, str | int | float]) -> FencedBatch:
        flat: list[bytes | str | int] = []
        for k, v in mapping.items():
            flat += [k, str(v)]
        return self._op("HSET", [key], flat)

    def delete(self, key: str) -> FencedBatch:
        return self._op("DEL", [key], [])

    def pexpire(self, key: str, ttl_ms: int) -> FencedBatch:
        return self._op("PEXPIRE", [key], [int(ttl_ms)])

    def publish(self, channel: str, message: bytes | str) -> FencedBatch:
        # A channel is not a key, but passing it as an argument keeps the op table uniform.
        return self._op("PUBLISH", [], [channel, message])

    def guard_hash_below(self, key: str, hash_field: str, value: int) -> FencedBatch:
        """Refuse the batch unless HGET key field < value (a missing field counts as -1)."""
        return self._op("GUARD_HLT", [key], [hash_field, int(value)])

    def script_args(self, epoch_key: str, epoch: int) -> tuple[list[str], list[Any]]:
        for i, name in enumerate(self._names()):
            if name not in _WRITES and name != "GUARD_HLT":
                raise ValueError(f"op {i}: {name} is not allowed in a fenced batch")
        return [epoch_key, *self.keys], [int(epoch), self.count, *self.args]

    def _names(self) -> list[str]:
        names, a = [], 0
        for _ in range(self.count):
            name, na = str(self.args[a]), int(self.args[a + 2])
            names.append(name)
            a += 3 + na
        return names


def _check(reply: Any) -> int:
    status, value = (x.decode() if isinstance(x, bytes) else str(x) for x in reply)
    if status == "fenced":
        raise Fenced(int(value))
    if status == "stale":
        raise Stale(int(value))
    return int(value)


def run_sync(client: redis.Redis, batch: FencedBatch, epoch_key: str, epoch: int) -> int:
    """Apply `batch` as writer `epoch`; raises Fenced or Stale. Returns the epoch now stored."""
    keys, args = batch.script_args(epoch_key, epoch)
    return _check(client.register_script(LUA)(keys=keys, args=args))


async def run_async(
    client: redis.asyncio.Redis, batch: FencedBatch, epoch_key: str, epoch: int
) -> int:
    keys, args = batch.script_args(epoch_key, epoch)
    return _check(await client.register_script(LUA)(keys=keys, args=args))

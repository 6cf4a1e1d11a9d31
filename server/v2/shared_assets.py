"""Uploaded assets in Redis, for shared jobs: any API replica stores, reads and deletes them, and
a job created through any replica ships their bytes to its worker (`server.media.attachments`).

Keys, under `settings.redis_prefix` (`P`), each expiring `asset_ttl` seconds after the last
upload that used it:
- `P:asset:{id}` hash: `hash`, `size`, `content_type`, `file_path`, `created_at`;
- `P:blob:{hex}` hash: `data` (the bytes, once per blake3 hash), `size`, `content_type`;
- `P:blobrefs:{hex}` set: the ids of the records over that blob (the blob goes with the last).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # redis is imported only with shared jobs (it pulls in OpenTelemetry's SDK)
    from redis.asyncio import Redis

from server.v2.assets import HASH_PREFIX, AssetRecord, blake3_of, display_name

# KEYS: blob, refs, asset. ARGV: data, id, size, content type, file path, now, ttl, with data
# ('1': store the bytes if new; '0': only over bytes already there).
# Returns {-1} (no such blob, nothing written), or {1 (the bytes were new) or 0, the blob's
# size, its content type}: the record as written, with no read back.
ADD = """
local new = redis.call('EXISTS', KEYS[1]) == 0
if new and ARGV[8] == '0' then return {-1} end
if new then
  redis.call('HSET', KEYS[1], 'data', ARGV[1], 'size', ARGV[3], 'content_type', ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[7])
local blob = redis.call('HMGET', KEYS[1], 'size', 'content_type')
redis.call('HSET', KEYS[3], 'hash', ARGV[9], 'size', blob[1], 'content_type', blob[2],
           'file_path', ARGV[5], 'created_at', ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[7])
return {new and 1 or 0, blob[1], blob[2]}
"""

# KEYS: asset. ARGV: key prefix, asset id. Deletes the record, and the blob when no live record
# uses it any more. Returns 0 when there was no such record.
DELETE = """
local digest = redis.call('HGET', KEYS[1], 'hash')
if not digest then return 0 end
redis.call('DEL', KEYS[1])
local hex = string.sub(digest, 8)
local refs = ARGV[1] .. ':blobrefs:' .. hex
redis.call('SREM', refs, ARGV[2])
for _, id in ipairs(redis.call('SMEMBERS', refs)) do
  if redis.call('EXISTS', ARGV[1] .. ':asset:' .. id) == 0 then redis.call('SREM', refs, id) end
end
if redis.call('SCARD', refs) == 0 then
  redis.call('DEL', refs, ARGV[1] .. ':blob:' .. hex)
end
return 1
"""


class SharedAssetStore:
    """`AssetStore`'s methods on Redis (a client with bytes answers)."""

    def __init__(self, redis: Redis, prefix: str, ttl: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = max(1, int(ttl))
        self._add = redis.register_script(ADD)
        self._delete = redis.register_script(DELETE)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    async def add(self, data: bytes, content_type: str, file_path: str | None
                  ) -> tuple[AssetRecord, bool]:
        """A new record for these bytes; True when the bytes were new to the store."""
        digest = blake3_of(data)
        record, new = await self._insert(digest, data, content_type, file_path)
        assert record is not None
        return record, new

    async def from_hash(self, digest: str, file_path: str | None) -> AssetRecord | None:
        """A new record over bytes the store already has, or None."""
        return (await self._insert(digest, b"", "", file_path))[0]

    async def _insert(self, digest: str, data: bytes, content_type: str, file_path: str | None
                      ) -> tuple[AssetRecord | None, bool]:
        hexdigest = digest[len(HASH_PREFIX):]
        asset_id, now = str(uuid.uuid4()), datetime.now(UTC).timestamp()
        name = display_name(file_path)
        done, *blob = await self._add(
            keys=[self._key("blob", hexdigest), self._key("blobrefs", hexdigest),
                  self._key("asset", asset_id)],
            args=[data, asset_id, len(data), content_type, name or "", repr(now),
                  self.ttl, "1" if data else "0", digest])
        if int(done) == -1:
            return None, False
        size, stored_type = blob
        record = AssetRecord(asset_id, digest, int(size), stored_type.decode(), name or None,
                             datetime.fromtimestamp(now, UTC))
        return record, int(done) == 1

    async def has_hash(self, digest: str) -> bool:
        return bool(await self.redis.exists(self._key("blob", digest[len(HASH_PREFIX):])))

    async def get(self, asset_id: str) -> AssetRecord | None:
        raw = await self.redis.hgetall(self._key("asset", asset_id))
        return _record(asset_id, raw) if raw else None

    async def delete(self, asset_id: str) -> bool:
        """Remove the record, and the blob when no other record uses it."""
        return bool(await self._delete(keys=[self._key("asset", asset_id)],
                                       args=[self.prefix, asset_id]))

    async def read(self, record: AssetRecord) -> bytes:
        data = await self.redis.hget(self._key("blob", record.hash[len(HASH_PREFIX):]), "data")
        if data is None:
            raise LookupError(f"the bytes of asset {record.id} expired")
        return data


def _record(asset_id: str, raw: dict[Any, Any]) -> AssetRecord:
    field = {k.decode(): v.decode() for k, v in raw.items()}
    return AssetRecord(asset_id, field["hash"], int(field["size"]), field["content_type"],
                       field["file_path"] or None,
                       datetime.fromtimestamp(float(field["created_at"]), UTC))

"""Pure logic of the shared asset store on fakeredis (its Lua scripts included): the record an
upload answers with is the one any replica reads back, and the bytes are kept once. The real
thing (Valkey, two replicas, a worker) is in test_shared.py and tests/shared_jobs."""

from __future__ import annotations

import fakeredis
import pytest

from server.v2.assets import blake3_of
from server.v2.shared_assets import SharedAssetStore


async def test_the_answered_record_is_the_stored_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """One round trip per upload (the script answers with what it wrote), and that answer is
    what `get` reads back later."""
    redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    assets = SharedAssetStore(redis, "t", ttl=60)
    reads = []
    real_hgetall = redis.hgetall
    monkeypatch.setattr(redis, "hgetall", lambda key: reads.append(key) or real_hgetall(key))
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
    first, new = await assets.add(data, "image/png", "in/photo.png")
    assert reads == []
    assert new and first == await assets.get(first.id)
    assert (first.size_bytes, first.content_type, first.hash) == (200 + 8, "image/png", blake3_of(data))
    again, new = await assets.add(data, "image/x-other", None)  # same bytes: the blob's type
    assert not new and again == await assets.get(again.id) and again.id != first.id
    assert again.content_type == "image/png" and again.file_path is None
    by_hash = await assets.from_hash(first.hash, "copy.png")
    assert by_hash == await assets.get(by_hash.id) and by_hash.size_bytes == first.size_bytes
    assert await assets.from_hash("blake3:" + "0" * 64, None) is None
    assert await assets.read(by_hash) == data
    assert len([k async for k in redis.scan_iter("t:blob:*")]) == 1

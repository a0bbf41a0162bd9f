"""The service's fast and plain tiers answer byte for byte as its full tier does."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings, strategies as st

from protocol.handle import OpFlag, ResolutionRequest, decode, encode, make_request, split_datagrams
from protocol.handle.fastpath import peek_plain_resolution
from tests.protocol.handle.wirebuild import FIXTURES, fixture
from .conftest import NOW, PRODUCT


async def slow(service, data: bytes) -> bytes:
    """The full tier: decode, dispatch, make_reply, encode (no plain-resolution shortcut)."""
    replies = [encode(r) async for r in service.answer(decode(data, service.limits), "127.0.0.1", "udp")]
    assert len(replies) == 1
    return replies[0]


async def plain(service, data: bytes) -> bytes:
    """What a TCP transport gets for ``data``, whichever tier answers it."""
    replies = service.handle(data, "127.0.0.1", "tcp")
    if callable(replies):
        replies = replies()                             # the plain tier, read inline
    elif asyncio.iscoroutine(replies):
        replies = await replies                         # the plain tier
    elif type(replies) is not bytes:
        replies = [r async for r in replies]            # the full tier
        assert len(replies) == 1
        replies = replies[0]
    return replies


def fast(service, data: bytes, transport: str):
    """The fast tier's answer (bytes, or UDP datagrams), or None when another tier answers."""
    replies = service.handle(data, "127.0.0.1", transport)
    if type(replies) in (bytes, list):
        return replies
    if asyncio.iscoroutine(replies):
        replies.close()
    return None


async def test_every_captured_resolution_gets_the_same_reply_both_ways(hs):
    service = hs.service
    answered = 0
    for name in sorted(p.name for p in FIXTURES.glob("*.bin")):
        data = fixture(name)
        first = await plain(service, data)              # fills the cache
        quick = fast(service, data, "tcp")
        if "resolve" in name:
            assert quick is not None, name              # every real client's lookup takes the fast tier
            slow_reply = await slow(service, data)
            assert quick == slow_reply == first, name
            assert fast(service, data, "udp") == split_datagrams(slow_reply), name
            answered += 1
        else:
            assert quick is None, name                  # site info: the full tier
    assert answered == 7


def request(handle: str, minor: int, flags: int, session: int, request_id: int, indexes=(), types=()) -> bytes:
    return encode(make_request(ResolutionRequest(handle, tuple(indexes), tuple(types)), request_id=request_id,
                               now=NOW, version=(2, minor), op_flags=OpFlag(flags), session_id=session))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(handle=st.sampled_from([PRODUCT, PRODUCT.upper(), "88.118.8/absent", "88.118.8/ADMIN"]),
       minor=st.integers(1, 11), flags=st.sampled_from([0, 0x19000000, 0x01000000, 0x00800000, 0x80000000]),
       session=st.sampled_from([0, 7]), request_id=st.integers(0, 2**32 - 1),
       filtered=st.booleans())
async def test_fast_equals_slow_or_declines(hs, handle, minor, flags, session, request_id, filtered):
    service = hs.service
    data = request(handle, minor, flags, session, request_id, indexes=(1,) if filtered else ())
    first = [await plain(service, data)]                 # fills the cache
    quick = fast(service, data, "tcp")
    if filtered or flags & 0x00800000:
        assert peek_plain_resolution(data) is None and quick is None
        return
    if session and not flags & 0x01000000:
        assert quick is None                             # wants authentication: challenged by the full tier
        return
    # Every other spelling too: the answer names the handle as asked, as the full tier's does.
    assert quick is not None and quick == first[0] == await slow(service, data)
    assert fast(service, data, "udp") == split_datagrams(first[0])


async def test_multi_datagram_replies_are_cut_as_the_full_path_cuts_them(hs):
    from protocol.values import HandleValue
    for size in (440, 441, 468, 469, 960, 3000):          # around the datagram boundaries
        handle = f"88.118.8/big-{size}"
        await hs.store.put_handle(handle, [HandleValue(1, "DESC", b"x" * size)], mode="create", actor="test")
        data = request(handle, 10, 0x19000000, 0, 99)
        first = await slow(hs.service, data)
        await plain(hs.service, data)                     # fills the cache
        datagrams = fast(hs.service, data, "udp")
        assert datagrams == split_datagrams(first) and len(datagrams) == -(-(len(first) - 20) // 492)


async def test_one_pipeline_lookup_per_request_whichever_tier_answers(hs):
    """A plain resolution the fast tier declines (another spelling, not yet
    cached), and a filtered one (the full tier), each reach the registry once."""
    async def misses() -> float:
        return await hs.metric("idnode_cache_misses_total")

    for data in (request(PRODUCT.upper(), 10, 0, 0, 1),               # another spelling, not cached
                 request("88.118.8/absent-one", 10, 0, 0, 2),         # not found
                 request(PRODUCT, 10, 0, 0, 3, indexes=(1,))):        # filtered: the full tier
        before = await misses()
        reply = await plain(hs.service, data)
        assert decode(reply).request_id in (1, 2, 3)
        assert await misses() == before + 1, data
        hs.service.pipeline.cache.clear()
    before = await misses()
    await plain(hs.service, request(PRODUCT.upper(), 10, 0, 0, 4))   # fills the cache
    assert fast(hs.service, request(PRODUCT.lower(), 10, 0, 0, 5), "udp") is not None   # any spelling: fast
    assert await misses() == before + 1


async def test_the_plain_tier_answers_alike_read_inline_or_awaited(hs):
    """On a store that reads inline (the embedded one) a miss comes back as a
    callable the transport calls, with no task; on a store that must await,
    as a coroutine. The replies are the same bytes."""
    service = hs.service
    assert service.pipeline.reads_inline
    for handle in (PRODUCT, PRODUCT.upper(), "88.118.8/absent", "88.118.8/"):
        data = request(handle, 10, 0, 0, 42)
        replies = {}
        for inline in (True, False):
            service.pipeline.cache.clear()
            service._reads_inline = inline
            try:
                answer = service.handle(data, "127.0.0.1", "udp")
                assert callable(answer) if inline else asyncio.iscoroutine(answer)
                replies[inline] = answer() if inline else await answer
            finally:
                service._reads_inline = True
        assert replies[True] == replies[False], handle
        assert decode(replies[True][0]).request_id == 42


async def test_rows_without_reply_ready_values_are_answered_alike(hs):
    """A row written before the store kept reply-ready values (NULL) is
    rendered from its stored values: the same bytes as from the ready ones,
    and as the full tier's."""
    import sqlite3
    service = hs.service
    data = request(PRODUCT, 10, 0, 0, 7)
    ready = await plain(service, data)
    service.pipeline.cache.clear()
    with sqlite3.connect(hs.store.backend.path) as conn:
        assert conn.execute("UPDATE handles SET ready = NULL").rowcount > 0
    assert (await hs.store.get_handle(PRODUCT)).ready is None
    assert await plain(service, data) == ready == await slow(service, data)


async def test_small_records_are_spliced_byte_for_byte(hs):
    """A one-datagram record (a URL and an HS_ADMIN, as most industrial
    identifiers are): the fast tier's spliced answer, over TCP and UDP, is
    the full tier's, from the reply-ready values and from the stored ones."""
    import sqlite3
    from protocol.values import HandleValue
    from protocol.valuetypes import AdminRef
    handle = "88.118.8/SN-small-1"
    await hs.store.put_handle(handle, [HandleValue(1, "URL", b"https://acme.example/t/SN-small-1"),
                                       HandleValue(100, "HS_ADMIN", AdminRef("88.118.8/ADMIN", 300).encode())],
                              mode="create", actor="test")
    data = request(handle, 10, 0, 0, 31)
    full = await slow(hs.service, data)
    for ready in (True, False):
        hs.service.pipeline.cache.clear()
        if not ready:
            with sqlite3.connect(hs.store.backend.path) as conn:
                conn.execute("UPDATE handles SET ready = NULL")
        assert await plain(hs.service, data) == full                  # the miss, read inline
        assert fast(hs.service, data, "tcp") == full                  # the hit
        assert fast(hs.service, data, "udp") == split_datagrams(full) and len(split_datagrams(full)) == 1

"""The operations layer's parts on their own: shared memory, lock-out,
permissions a change needs, value visibility and filters, web URLs, the UDP
response-rate limit."""

from __future__ import annotations

import pytest

from protocol.values import HandleValue, Perm
from protocol.valuetypes import AdminPerm, AdminRef
from resolver.core.caller import Identity, scope_of
from resolver.core.errors import Refused
from resolver.core.lockout import Lockout, source_of
from resolver.core.permissions import needed_for_change
from resolver.core.urls import is_web_url, redirect_target
from resolver.core.visibility import readable, select
from resolver.core.throttle import ANSWER, DROP, SLIP, ResponseRateLimit, WorkBudget, source_prefix, udp_limit
from resolver.settings import AuthSettings, HandleSettings
from resolver.shared import STAMP_SLOTS, SharedState, slot_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- shared memory ------------------------------------------------------------------------------
def test_stamps_are_seen_by_every_mapping_of_the_file(tmp_path):
    path = tmp_path / "shared"
    writer = SharedState.create(path)
    reader = SharedState.attach(path)
    try:
        a, b = slot_of("88.118.8/a"), slot_of("88.118.8/b")
        before = reader.stamps[a], reader.stamps[b]
        writer.bump(["88.118.8/a"])
        assert reader.stamps[a] != before[0] and reader.stamps[b] == before[1]
        first = reader.stamps[a]
        writer.bump(["88.118.8/a"])
        assert reader.stamps[a] != first                      # every write moves the stamp again
        marks = [reader.stamps[s] for s in (a, b, 0, STAMP_SLOTS - 1)]
        reader.bump_all()                                     # any mapping may write
        assert all(writer.stamps[s] != m for s, m in zip((a, b, 0, STAMP_SLOTS - 1), marks))
    finally:
        reader.close()
        writer.close()
    with pytest.raises(FileExistsError):
        SharedState.create(path)
    path.write_bytes(b"not shared state" * 4096)
    with pytest.raises(ValueError):
        SharedState.attach(path)


def test_failure_table_counts_per_source_in_a_window():
    shared = SharedState.private()
    assert [shared.add_failure("10.0.0.1", 100, 300) for _ in range(3)] == [1, 2, 3]
    assert shared.failures("10.0.0.1", 200, 300) == 3 and shared.failures("10.0.0.2", 200, 300) == 0
    assert shared.failures("10.0.0.1", 401, 300) == 0              # the window from the first failure ended
    assert shared.add_failure("10.0.0.1", 401, 300) == 1
    # Far more sources than one bucket holds: the table stays bounded and keeps counting newcomers.
    for i in range(100_000):
        shared.add_failure(f"s{i}", 500, 300)
    assert shared.add_failure("newcomer", 500, 300) == 1 and shared.failures("newcomer", 500, 300) == 1
    shared.close()


# -- lock-out -------------------------------------------------------------------------------------
async def test_lockout_slows_down_then_locks_the_source_only():
    clock = Clock()
    lock = Lockout(SharedState.private(), AuthSettings(failure_delay=0.5, lockout_failures=3, lockout_seconds=300),
                   clock)
    assert [await lock.failed("10.0.0.1") for _ in range(2)] == [0.5, 1.0]   # each failure waits longer
    await lock.check("10.0.0.1")
    assert await lock.failed("10.0.0.1") == 1.5
    with pytest.raises(Refused) as err:
        await lock.check("10.0.0.1")
    assert err.value.code == 403 and err.value.retry_after == 300
    await lock.check("10.0.0.2")                                            # another source is not locked
    clock.now += 301
    await lock.check("10.0.0.1")                                            # the window passed
    for _ in range(20):
        delay = await lock.failed("10.0.0.3")
    assert delay == 5.0                                                     # capped at ten steps


def test_sources_group_ipv6_by_64():
    assert source_of("2001:db8:1:2:aaaa::1") == source_of("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")
    assert source_of("::ffff:10.0.0.1") == "10.0.0.1" and source_of("10.0.0.1") == "10.0.0.1"
    assert source_of("not an address") == "not an address"


# -- callers ------------------------------------------------------------------------------------
def test_identity_scope_and_actor():
    assert scope_of("88.118.8/ADMIN") == "88.118.8" and scope_of("0.NA/88.118.8") == "88.118.8"
    ent = Identity("88.118.8/ADMIN", 300, "88.118.8")
    assert ent.actor == "300:88.118.8/ADMIN" and not ent.node_wide
    assert Identity("0.NA/88.118", 300, None).node_wide
    assert Identity("", 0, None, operator=True).actor == "cli"


# -- what a change needs -------------------------------------------------------------------------
URL = HandleValue(1, "URL", b"https://a.example/")
DESC = HandleValue(2, "DESC", b"d")
ADMIN = HandleValue(100, "HS_ADMIN", AdminRef("88.118.8/ADMIN", 300).encode())
READ_ONLY = HandleValue(3, "DESC", b"fixed", permissions=int(Perm.ADMIN_READ | Perm.PUBLIC_READ))
PUBLIC_WRITE = HandleValue(4, "NOTE", b"n", permissions=0xF)


@pytest.mark.parametrize("old, new, removing, perms, read_only", [
    ([URL], [URL, DESC], False, AdminPerm.ADD_VALUE, ()),
    ([URL], [URL, ADMIN], False, AdminPerm.ADD_ADMIN, ()),
    ([URL, DESC], [URL], True, AdminPerm.REMOVE_VALUE, ()),
    ([URL, DESC], [URL], False, 0, ()),
    ([URL, ADMIN], [URL], True, AdminPerm.REMOVE_ADMIN, ()),
    ([URL], [URL.with_(data=b"x")], False, AdminPerm.MODIFY_VALUE, ()),
    ([URL], [URL.with_(timestamp=99)], False, 0, ()),                   # timestamps aside: unchanged
    ([ADMIN], [ADMIN.with_(ttl=5)], False, AdminPerm.MODIFY_ADMIN, ()),
    ([ADMIN], [ADMIN.with_(type="DESC")], False, AdminPerm.REMOVE_ADMIN | AdminPerm.MODIFY_VALUE, ()),
    ([DESC], [DESC.with_(type="HS_ADMIN")], False, AdminPerm.MODIFY_VALUE | AdminPerm.ADD_ADMIN, ()),
    ([READ_ONLY], [READ_ONLY.with_(data=b"changed")], False, AdminPerm.MODIFY_VALUE, (3,)),
    ([READ_ONLY], [READ_ONLY], True, 0, ()),                            # unchanged: allowed
    ([READ_ONLY, URL], [URL], True, AdminPerm.REMOVE_VALUE, ()),        # removing a read-only value is allowed
    ([PUBLIC_WRITE], [PUBLIC_WRITE.with_(data=b"m")], False, 0, ()),    # publicly writable: no MODIFY_VALUE
])
def test_needed_for_change(old, new, removing, perms, read_only):
    need = needed_for_change(old, new, removing=removing)
    assert (need.perms, need.read_only) == (int(perms), read_only)


# -- visibility and filters ----------------------------------------------------------------------
VALUES = (
    URL, HandleValue(2, "URL.mirror", b"https://m.example/"), HandleValue(3, "EMAIL", b"e", permissions=0x0C),
    HandleValue(4, "HS_SECKEY", b"s"), HandleValue(5, "hs_seckey", b"s"), HandleValue(6, "HS_SECKEY.backup", b"s"),
    HandleValue(7, "url", b"https://lower.example/"),
)


def test_secrets_never_readable_admin_read_only_for_admins():
    assert [v.index for v in readable(VALUES)] == [1, 2, 7]
    assert [v.index for v in readable(VALUES, admin=True)] == [1, 2, 3, 7]


@pytest.mark.parametrize("indexes, types, expected", [
    ((), (), [1, 2, 3, 4, 5, 6, 7]),
    ((), ("URL",), [1, 2, 7]),                        # subtypes and any case
    ((3,), ("URL",), [1, 2, 3, 7]),                   # index OR type
    ((2,), ("EMAIL",), [2, 3]),
    ((), ("URL.mirror",), [2]),
    ((), ("UR",), []),
])
def test_filters_follow_handle_net(indexes, types, expected):
    assert [v.index for v in select(VALUES, indexes, types)] == expected


# -- web URLs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, ok", [
    ("https://acme.example/p/1", True), ("HTTP://acme.example", True), ("http://10.0.0.1:8080/x?y=1", True),
    ("javascript:alert(1)", False), ("/relative/path", False), ("//acme.example/x", False), ("ftp://a.example/", False),
    ("https://", False), ("https://a.example/\nSet-Cookie: x", False), ("https://a b.example/", False),
    ("https://a.example:99999/", False), ("data:text/html,hi", False), ("", False),
])
def test_web_urls(text, ok):
    assert is_web_url(text) is ok


def test_redirect_target_is_the_first_web_url():
    values = [HandleValue(1, "URL", b"javascript:alert(1)"), HandleValue(2, "URL", b"\xff\xfe"),
              HandleValue(3, "URL", b"https://ok.example/")]
    assert redirect_target(values) == "https://ok.example/" and redirect_target(values[:2]) is None


# -- UDP response-rate limit --------------------------------------------------------------------
def test_udp_answers_per_source_prefix_are_a_token_bucket_with_slip():
    clock = Clock()
    limit = ResponseRateLimit(HandleSettings(udp_rate=10, udp_burst=4, udp_slip=3, udp_rate_exempt="10.9.0.0/16"),
                              clock)
    verdicts = [limit.admit(f"192.0.2.{i}") for i in range(1, 11)]          # one /24, ten addresses
    assert verdicts == [ANSWER] * 4 + [DROP, DROP, SLIP, DROP, DROP, SLIP]
    assert limit.admit("192.0.3.1") == ANSWER                               # the next /24 has its own
    clock.now += 0.25                                                       # 2.5 answers refilled
    assert [limit.admit("192.0.2.1") for _ in range(3)] == [ANSWER, ANSWER, DROP]
    clock.now += 100                                                        # never more than the burst
    assert [limit.admit("192.0.2.1") for _ in range(5)].count(ANSWER) == 4
    assert all(limit.admit("10.9.200.1") == ANSWER for _ in range(100))     # exempt
    assert "10.9.200.1" in limit.exempt and "192.0.2.1" not in limit.exempt   # a transport may skip admit()
    assert [limit.admit("2001:db8:0:ff::1") for _ in range(4)] + [limit.admit("2001:db8:0:1::9")] \
        == [ANSWER] * 4 + [DROP]                                            # one IPv6 /56
    assert source_prefix("::ffff:192.0.2.7") == "192.0.2.0/24"


def test_udp_rate_limit_tracks_a_bounded_number_of_prefixes():
    clock = Clock()
    sizes = []
    limit = ResponseRateLimit(HandleSettings(udp_rate=1, udp_burst=1, udp_rate_sources=100, udp_rate_exempt=""),
                              clock, on_size=sizes.append)
    for i in range(1000):
        limit.admit(f"10.{i // 256}.{i % 256}.1")
    assert len(limit) == 100 and max(sizes) == 100 and sizes[-1] == 100
    assert udp_limit(HandleSettings(udp_rate=0)) is None                   # 0: no limit at all


def test_public_key_work_is_a_bounded_token_bucket_per_source_prefix():
    clock = Clock()
    budget = WorkBudget(HandleSettings(crypto_rate=2, crypto_burst=12, udp_rate_sources=100), clock)
    assert budget.spend("192.0.2.1", 11) and not budget.spend("192.0.2.9", 2)     # one /24: 1 unit left
    assert budget.spend("192.0.2.9", 1) and budget.spend("198.51.100.1", 11)      # another /24 has its own
    clock.now += 1                                                                 # 2 units a second
    assert budget.spend("192.0.2.1", 2) and not budget.spend("192.0.2.1", 1)
    for i in range(1000):
        budget.spend(f"10.{i // 256}.{i % 256}.1", 1)
    assert len(budget) == 100                                                      # the oldest forgotten
    assert WorkBudget(HandleSettings(crypto_rate=0), clock).spend("192.0.2.1", 10 ** 9)   # 0: no limit


"""Delegating an enterprise prefix to the enterprise's own Handle server,
over REST (the CLI's side is in tests/cli/test_commands.py): who may, what
the prefix record then says over the Handle protocol, and bad input."""

from __future__ import annotations

import pytest

from protocol.codes import RC
from protocol.valuetypes import Interface, SiteInfo
from resolver.hs.client import HandleClient, HandleResponseError


async def delegation(live, prefix: str, body, headers, method: str = "PUT") -> tuple[int, dict]:
    async with live.session.request(method, f"{live.url}/api/prefixes/{prefix}/delegation", json=body,
                                    headers=headers) as r:
        return r.status, await r.json()


async def prefix_record(live, prefix: str, transport: str = "udp"):
    async with HandleClient("127.0.0.1", live.running.hs_port, transport=transport, timeout=10.0) as client:
        return await client.resolve(f"0.NA/{prefix}")


async def served_from(live, prefix: str) -> int:
    """The TCP port the HS_SITE of ``prefix``'s record names (this node's while not delegated)."""
    record = await prefix_record(live, prefix)
    (site,) = [SiteInfo.decode(v.data) for v in record.values if v.type == "HS_SITE"]
    return next(i.port for i in site.servers[0].interfaces if i.transport == Interface.TCP)


async def test_the_node_admin_delegates_to_a_site_and_takes_it_back(live):
    assert await served_from(live, "88.118.8") == live.running.hs_port        # a homed prefix's record: this node
    status, doc = await delegation(live, "88.118.8", {"site": "192.0.2.7:2641"}, live.node_admin)
    assert (status, doc["delegation"]) == (200, {"site": "192.0.2.7:2641"})
    shown = await (await live.session.get(f"{live.url}/api/prefixes/88.118.8", headers=live.ent_admin)).json()
    assert shown["delegation"] == {"site": "192.0.2.7:2641"}               # the prefix's own admin sees it
    for transport in ("udp", "tcp"):                                       # anyone resolves the prefix record
        record = await prefix_record(live, "88.118.8", transport)
        site = SiteInfo.decode(next(v.data for v in record.values if v.type == "HS_SITE"))
        (server,) = site.servers
        assert server.address_text == "192.0.2.7" and site.is_primary
        assert {(i.transport, i.port) for i in server.interfaces} == {(Interface.TCP, 2641), (Interface.UDP, 2641)}
        admin = next(v for v in record.values if v.type == "HS_ADMIN")
        assert admin.index == 100 and b"0.NA/88.118" in admin.data          # the node admin keeps it

    status, doc = await delegation(live, "88.118.8", {"service": "0.NA/88.118.8.SERV"}, live.node_admin)
    assert (status, doc["delegation"]) == (200, {"service": "0.NA/88.118.8.SERV"})
    record = await prefix_record(live, "88.118.8")
    assert [(v.index, v.type, v.data) for v in record.values if v.type != "HS_ADMIN"] == \
        [(2, "HS_SERV", b"0.NA/88.118.8.SERV")]                           # replaced, not added to

    status, doc = await delegation(live, "88.118.8", None, live.node_admin, "DELETE")
    assert (status, doc["delegation"]) == (200, None)
    assert await served_from(live, "88.118.8") == live.running.hs_port        # served here again
    with pytest.raises(HandleResponseError) as unknown:
        await prefix_record(live, "88.118.77")                               # no such prefix here
    assert unknown.value.code == RC.HANDLE_NOT_FOUND
    shown = await (await live.session.get(f"{live.url}/api/prefixes/88.118.8", headers=live.node_admin)).json()
    assert shown["delegation"] is None


@pytest.mark.parametrize("prefix, body, who, status, code", [
    ("88.118.8", {"site": "192.0.2.7:2641"}, "ent_admin", 403, RC.NOT_AN_ADMIN),        # the node admin's call
    ("88.118.8", {"site": "192.0.2.7:2641"}, None, 401, RC.AUTHENTICATION_NEEDED),
    ("88.118.77", {"site": "192.0.2.7:2641"}, "node_admin", 404, RC.HANDLE_NOT_FOUND),   # not allocated here
    ("88.118", {"site": "192.0.2.7:2641"}, "node_admin", 404, RC.HANDLE_NOT_FOUND),      # the node's own prefix
    ("88.118.8", {"site": "acme.example:2641"}, "node_admin", 400, RC.INVALID_VALUE),    # an address, not a name
    ("88.118.8", {"site": "192.0.2.7"}, "node_admin", 400, RC.INVALID_VALUE),
    ("88.118.8", {"site": "192.0.2.7:0"}, "node_admin", 400, RC.INVALID_VALUE),
    ("88.118.8", {"site": "[2001:db8::1]:70000"}, "node_admin", 400, RC.INVALID_VALUE),
    ("88.118.8", {"site": 2641}, "node_admin", 400, RC.INVALID_VALUE),
    ("88.118.8", {}, "node_admin", 400, RC.INVALID_VALUE),                                 # neither
    ("88.118.8", {"site": "192.0.2.7:1", "service": "0.NA/x"}, "node_admin", 400, RC.INVALID_VALUE),   # both
    ("88.118.8", {"service": "no-slash"}, "node_admin", 400, RC.INVALID_HANDLE),
    ("88.118.8", ["192.0.2.7:2641"], "node_admin", 400, RC.ERROR),                        # not an object
])
async def test_bad_delegations_are_refused_and_change_nothing(live, prefix, body, who, status, code):
    got, doc = await delegation(live, prefix, body, getattr(live, who) if who else {})
    assert (got, doc["responseCode"]) == (status, code) and doc["message"], doc
    assert await served_from(live, "88.118.8") == live.running.hs_port        # still this node's


async def test_undelegating_what_is_not_delegated_is_not_found(live):
    assert (await delegation(live, "88.118.8", None, live.node_admin, "DELETE"))[0] == 404
    assert (await delegation(live, "88.118.8", None, live.ent_admin, "DELETE"))[0] == 403


async def resolved_code(live, handle: str, transport: str):
    """(response code, the reply's body) of a resolution over ``transport``."""
    async with HandleClient("127.0.0.1", live.running.hs_port if transport != "http" else live.running.http_port,
                            transport=transport, timeout=10.0) as client:
        try:
            await client.resolve(handle)
        except HandleResponseError as exc:
            return exc.code, exc.reply.body if exc.reply is not None else None
    return RC.SUCCESS, None


async def test_misses_are_referred_under_a_delegated_prefix_and_refused_outside_the_nodes(live):
    cases = {"88.118.8/not-here": RC.HANDLE_NOT_FOUND,        # a prefix homed here: a miss is a miss
             "88.118/not-here": RC.HANDLE_NOT_FOUND,          # the node's own prefix
             "0.NA/88.118.77": RC.HANDLE_NOT_FOUND,           # the node's own 0.NA
             "88.118.77/x": RC.SERVER_NOT_RESPONSIBLE,        # not allocated here
             "86.100.1/x": RC.SERVER_NOT_RESPONSIBLE}         # another secondary node's
    for handle, code in cases.items():
        for transport in ("udp", "tcp", "http"):
            got, body = await resolved_code(live, handle, transport)
            assert got == code, (handle, transport)
            if code == RC.SERVER_NOT_RESPONSIBLE:        # the fast tier's kept answer names the prefix too
                assert body.message == f"prefix {handle.partition('/')[0]} is not served by this node", body
    assert (await delegation(live, "88.118.8", {"site": "192.0.2.7:2641"}, live.node_admin))[0] == 200
    # The enterprise node homes the sub-prefixes of its prefix too; a homed prefix's unallocated ones are not ours.
    assert (await resolved_code(live, "88.118.8.1/x", "udp"))[0] == RC.SERVICE_REFERRAL
    assert (await resolved_code(live, "88.118.9.5/x", "udp"))[0] == RC.SERVER_NOT_RESPONSIBLE
    for transport in ("udp", "tcp", "http"):          # the cached "not found" went with the delegation
        code, body = await resolved_code(live, "88.118.8/not-here", transport)
        assert code == RC.SERVICE_REFERRAL and body.handle == "0.NA/88.118.8", transport
        (site,) = body.values
        assert site.type == "HS_SITE" and SiteInfo.decode(site.data).servers[0].address_text == "192.0.2.7"
        assert (await resolved_code(live, "88.118.8/ADMIN", transport))[0] == RC.SUCCESS   # registered here: stays
    async with live.session.get(f"{live.url}/api/handles/88.118.8/not-here") as r:
        doc = await r.json()
        assert (r.status, doc["responseCode"]) == (404, RC.SERVICE_REFERRAL) and "0.NA/88.118.8" in doc["message"]
    async with live.session.post(f"{live.url}/api/batch/resolve", json={"handles": ["88.118.8/not-here",
                                                                                    "86.100.1/x"]}) as r:
        assert [x["responseCode"] for x in (await r.json())["results"]] == [302, 301]
    assert (await delegation(live, "88.118.8", None, live.node_admin, "DELETE"))[0] == 200
    assert (await resolved_code(live, "88.118.8/not-here", "udp"))[0] == RC.HANDLE_NOT_FOUND


async def test_the_nodes_own_prefix_record_names_its_site(live):
    """0.NA/88.118, the node admin's record, carries the HS_SITE get site info
    answers (written at start when it differs), as a Handle.Net prefix record does."""
    assert await served_from(live, "88.118") == live.running.hs_port
    async with HandleClient("127.0.0.1", live.running.hs_port, timeout=10.0) as client:
        record = await client.resolve("0.NA/88.118")
        site = await client.site_info()
    (value,) = [v for v in record.values if v.type == "HS_SITE"]
    assert value.index == 1 and SiteInfo.decode(value.data) == site
    assert {v.type for v in record.values} == {"HS_SITE", "HS_ADMIN"}        # the secret stays unreadable
    stored = await live.store.get_handle("0.NA/88.118")
    assert [v.type for v in stored.values if v.index == 300] == ["HS_SECKEY"]   # and kept

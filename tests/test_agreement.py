"""Every front end agrees.

The same records, callers and requests get the same values, the same writes
and the same response codes over REST, batch (JSON and CBOR), the proxy, the
Handle protocol over TCP, UDP and HTTP, and the CLI. Callers: anonymous, the
admin of the identifiers' prefix, the admin of another prefix, a partner (the
admin of a third prefix, named with some permissions in the identifiers' own
HS_ADMIN), and the node admin (the CLI's operator acts as the node admin).

The Handle protocol's writes are also made inside a session (``hs-session``:
Handle.Net's way, set up by the caller, challenged once) and on a TCP
connection the caller logged in on (``hs-login``: the CAICT SDK's IDIS
login); reads inside a session too.

Each table row is asked of every front end that can ask it; the answers must
all be equal, and equal to what the row expects (so a rule broken everywhere
fails too). Writes each get a target of their own, set up identically, so
every front end starts from the same record.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import aiohttp
import cbor2
import orjson
import pytest

from protocol.codes import RC
from protocol.jsoncodec import value_to_json, values_from_json
from protocol.values import HandleValue, Perm, is_secret_type
from protocol.valuetypes import AdminPerm, AdminRef
from registry import provision
from resolver.hs.client import HandleClient, HandleResponseError, SecretKeyAuth
from resolver.server import serving
from resolver.settings import load_settings
from tests.conftest import ENT_PASSWORD, NODE_PASSWORD, OTHER_PASSWORD, basic, provision_node, store_of

NOW = 1_790_000_000
PARTNER_PASSWORD = "partner-secret-000003"
IDENTITIES = {
    "prefix admin": ("88.118.8/ADMIN", ENT_PASSWORD),
    "other admin": ("88.118.9/ADMIN", OTHER_PASSWORD),
    "partner": ("88.118.10/ADMIN", PARTNER_PASSWORD),
    "node admin": ("0.NA/88.118", NODE_PASSWORD),
}
CALLERS = ("anonymous", *IDENTITIES)
PARTNER_PERMS = AdminPerm.READ_VALUE | AdminPerm.MODIFY_VALUE | AdminPerm.ADD_VALUE
SEALED = b"<sealed>"

SHARED = "88.118.8/shared"
PLAIN = "88.118.8/plain"
GONE = "88.118.11/gone"               # under a disabled prefix


def shared_values() -> list[HandleValue]:
    return [
        HandleValue(1, "URL", b"https://acme.example/s"),
        HandleValue(2, "EMAIL", b"ops@acme.example", permissions=int(Perm.ADMIN_READ | Perm.ADMIN_WRITE)),
        HandleValue(3, "URL.mirror", b"https://mirror.example/s"),
        HandleValue(4, "DESC", b"fixed", permissions=int(Perm.ADMIN_READ | Perm.PUBLIC_READ)),   # read-only
        HandleValue(5, "NOTE", b"note"),
        HandleValue(101, "HS_ADMIN", AdminRef("88.118.10/ADMIN", 300, int(PARTNER_PERMS)).encode()),
        HandleValue(300, "HS_SECKEY", b"secret-one", permissions=0x0C),
        HandleValue(301, "hs_seckey", b"secret-two"),
        HandleValue(302, "HS_SECKEY.backup", b"secret-three"),
    ]


def busy(status: int, doc: dict) -> bool:
    """The one 5xx a front end may answer: 503 with RC 3, the store away."""
    return status == 503 and doc.get("responseCode") == RC.SERVER_BUSY


def shape(values) -> tuple:
    """Values as compared: (index, type, data); secrets only by their place."""
    return tuple(sorted((v.index, v.type, SEALED if is_secret_type(v.type) else v.data) for v in values))


class World:
    """One node serving every front end, with the records and identities of the tables."""

    def __init__(self, running, session: aiohttp.ClientSession, home: Path):
        self.running, self.session, self.home = running, session, home
        self.url = running.url
        self.store = running.store

    # -- REST, batch, proxy ---------------------------------------------------------------
    def headers(self, caller: str) -> dict:
        if caller == "anonymous":
            return {}
        handle, password = IDENTITIES[caller]
        return basic(f"300:{handle}", password)

    async def rest_read(self, caller, handle, indexes, types):
        params = [("index", str(i)) for i in indexes] + [("type", t) for t in types]
        async with self.session.get(f"{self.url}/api/handles/{handle}", params=params,
                                    headers=self.headers(caller)) as r:
            doc = await r.json()
        assert r.status < 500 or busy(r.status, doc), doc
        return doc["responseCode"], shape(values_from_json(doc.get("values", [])))

    async def batch(self, path: str, caller: str, body: dict, cbor: bool) -> tuple[int, dict]:
        """POST a batch in JSON or CBOR: (HTTP status, the answer)."""
        headers = self.headers(caller)
        if cbor:
            headers = {**headers, "Content-Type": "application/cbor", "Accept": "application/cbor"}
            kw = {"data": cbor2.dumps(body)}
        else:
            kw = {"json": body}
        async with self.session.post(f"{self.url}/api/batch/{path}", headers=headers, **kw) as r:
            raw = await r.read()
            doc = cbor2.loads(raw) if r.content_type == "application/cbor" else orjson.loads(raw)
        assert r.status < 500 or busy(r.status, doc), doc
        return r.status, doc

    async def batch_read(self, caller, handle, cbor: bool):
        status, doc = await self.batch("resolve", caller, {"handles": [handle]}, cbor)
        if busy(status, doc):
            return doc["responseCode"], ()
        assert status == 200, doc
        (item,) = doc["results"]
        return item["responseCode"], shape(values_from_json(item.get("values", [])))

    async def proxy(self, handle):
        async with self.session.get(f"{self.url}/{handle}", allow_redirects=False) as r:
            return r.status, r.headers.get("Location")

    async def rest_write(self, caller, op, handle, values):
        headers = self.headers(caller)
        base = f"{self.url}/api/handles/{handle}"
        body = {"values": [value_to_json(v) for v in values]}
        if op == "create" or op == "create disabled":
            call = self.session.put(base, json=body, params={"overwrite": "false"}, headers=headers)
        elif op == "replace":
            call = self.session.put(base, json=body, headers=headers)
        elif op in ("modify", "modify read-only", "add"):
            call = self.session.put(base, json=body, params={"index": str(values[0].index)}, headers=headers)
        elif op == "remove":
            call = self.session.delete(base, params={"index": "5"}, headers=headers)
        else:
            call = self.session.delete(base, headers=headers)
        async with call as r:
            doc = await r.json()
        assert r.status < 500 or busy(r.status, doc), doc
        return doc["responseCode"]

    async def batch_write(self, caller, op, handle, values, cbor: bool):
        body = {"overwrite": op == "replace", "items": [{"handle": handle, "values": [value_to_json(v)
                                                                                     for v in values]}]}
        status, doc = await self.batch("register", caller, body, cbor)
        return doc["results"][0]["responseCode"] if status == 200 else doc["responseCode"]

    # -- the Handle protocol -----------------------------------------------------------------
    def client(self, transport: str) -> HandleClient:
        port = self.running.http_port if transport == "http" else self.running.hs_port
        return HandleClient("127.0.0.1", port, transport=transport, clock=lambda: NOW, timeout=10.0)

    @staticmethod
    def auth(caller: str):
        if caller == "anonymous":
            return None
        handle, password = IDENTITIES[caller]
        return SecretKeyAuth(handle, 300, password.encode())

    async def hs_read(self, transport, caller, handle, indexes, types):
        session = transport == "session"
        async with self.client("tcp" if session else transport) as client:
            try:
                if session:
                    await client.setup_session(self.auth(caller))
                body = await client.resolve(handle, indexes=indexes, types=types, auth=self.auth(caller))
            except HandleResponseError as exc:
                return exc.code, ()
        return RC.SUCCESS, shape(body.values)

    async def hs_write(self, transport, caller, op, handle, values):
        """``transport``: tcp, udp, http; ``session`` (TCP in a session the
        caller set up) or ``login`` (TCP, the connection logged in as the caller)."""
        auth = self.auth(caller)
        mode = transport if transport in ("session", "login") else None
        async with self.client("tcp" if mode else transport) as client:
            try:
                if mode == "session":
                    await client.setup_session(auth)
                elif mode == "login" and auth is not None:
                    await client.login(auth)
                    auth = None                       # the connection is logged in: no credentials
                if op in ("create", "create disabled"):
                    await client.create_handle(handle, values, auth)
                elif op == "replace":
                    await client.create_handle(handle, values, auth, overwrite=True)
                elif op in ("modify", "modify read-only"):
                    await client.modify_values(handle, values, auth)
                elif op == "add":
                    await client.add_values(handle, values, auth)
                elif op == "remove":
                    await client.remove_values(handle, [5], auth)
                else:
                    await client.delete_handle(handle, auth)
            except HandleResponseError as exc:
                return exc.code
        return RC.SUCCESS

    # -- the CLI (the operator) -----------------------------------------------------------------
    async def cli(self, *args: str) -> tuple[int, str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDNODE_")}
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("idnode")), "--home", str(self.home), *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert "Traceback" not in err.decode(), err
        return proc.returncode, out.decode(), err.decode()

    async def cli_read(self, handle):
        status, out, err = await self.cli("resolve", handle, "--json")
        doc = orjson.loads(out)
        assert (status == 0) == (doc["responseCode"] in (RC.SUCCESS, RC.VALUES_NOT_FOUND)), (status, err)
        return doc["responseCode"], shape(values_from_json(doc.get("values", [])))

    async def cli_write(self, op, handle, values):
        if op == "delete":
            status, _, err = await self.cli("delete", handle)
        else:                           # the operator's writes of whole records: `idnode import`
            line = {"handle": handle, "values": [value_to_json(v) for v in values]}
            path = self.home.parent / f"{abs(hash(handle))}.jsonl"
            path.write_bytes(orjson.dumps(line) + b"\n")
            status, _, err = await self.cli("import", str(path), *(["--overwrite"] if op == "replace" else []))
        assert status in (0, 1) and (status == 0 or "idnode: error: " in err), err
        return RC.SUCCESS if status == 0 else None          # the CLI says "failed", not which code


async def provisioned(tmp_path: Path, **overrides):
    """The node of the tables: its settings, its prefixes and records in place."""
    home = tmp_path / "home"
    settings = load_settings(env={}, overrides={"node.home": str(home), "http.port": 0, "handle.port": 0,
                                                 "auth.failure_delay": 0.0, "handle.idle_timeout": 2,
                                                 "handle.crypto_rate": 0,   # hundreds of sessions from one address
                                                 **overrides})
    await provision_node(settings)
    store = store_of(settings)
    await store.open()
    try:
        for prefix, password in (("88.118.10", PARTNER_PASSWORD), ("88.118.11", PARTNER_PASSWORD)):
            await provision.create_prefix(store, prefix, f"Owner of {prefix}", password=password, actor="test")
        await store.put_handle(SHARED, shared_values(), mode="create", actor="test")
        await store.put_handle(PLAIN, [HandleValue(1, "URL", b"https://acme.example/plain")], mode="create",
                               actor="test")
        await store.put_handle(GONE, [HandleValue(1, "URL", b"https://gone.example/")], mode="create", actor="test")
        await store.set_prefix_state("88.118.11", "disabled", actor="test")
    finally:
        await store.close()
    return settings


@pytest.fixture
async def world(tmp_path):
    settings = await provisioned(tmp_path)
    async with serving(settings, clock=lambda: NOW) as running, aiohttp.ClientSession() as session:
        yield World(running, session, settings.home)


# ---------------------------------------------------------------- reads

PUBLIC = (1, 3, 4, 5, 101)
ALL_READABLE = (1, 2, 3, 4, 5, 101)
READERS = ("anonymous", "other admin")              # see only public values of SHARED
ADMINS = ("prefix admin", "partner", "node admin")  # READ_VALUE on SHARED

# (handle, indexes, types) -> {caller group: (code, indexes seen)}
READS = [
    ((SHARED, (), ()), {READERS: (RC.SUCCESS, PUBLIC), ADMINS: (RC.SUCCESS, ALL_READABLE)}),
    ((SHARED, (2,), ("URL",)), {READERS: (RC.SUCCESS, (1, 3)), ADMINS: (RC.SUCCESS, (1, 2, 3))}),
    ((SHARED, (4,), ()), {READERS + ADMINS: (RC.SUCCESS, (4,))}),
    ((SHARED, (), ("url",)), {READERS + ADMINS: (RC.SUCCESS, (1, 3))}),
    ((SHARED, (), ("HS_SECKEY",)), {READERS + ADMINS: (RC.VALUES_NOT_FOUND, ())}),
    ((SHARED, (300, 301, 302), ()), {READERS + ADMINS: (RC.VALUES_NOT_FOUND, ())}),
    ((SHARED, (2,), ()), {READERS: (RC.VALUES_NOT_FOUND, ()), ADMINS: (RC.SUCCESS, (2,))}),
    ((PLAIN, (), ()), {READERS + ADMINS: (RC.SUCCESS, (1,))}),
    ((GONE, (), ()), {READERS + ADMINS: (RC.HANDLE_NOT_FOUND, ())}),
    ((GONE, (1,), ()), {READERS + ADMINS: (RC.HANDLE_NOT_FOUND, ())}),
    (("88.118.8/absent", (), ()), {READERS + ADMINS: (RC.HANDLE_NOT_FOUND, ())}),
]


def expected_read(row: dict, caller: str) -> tuple[int, tuple[int, ...]]:
    return next(v for group, v in row.items() if caller in group)


async def test_every_front_end_reads_the_same(world):
    for (handle, indexes, types), row in READS:
        for caller in CALLERS:
            answers = {
                "rest": await world.rest_read(caller, handle, indexes, types),
                **{f"hs-{t}": await world.hs_read(t, caller, handle, indexes, types)
                   for t in ("tcp", "udp", "http", "session")},
            }
            if not indexes and not types:
                answers["batch-json"] = await world.batch_read(caller, handle, cbor=False)
                answers["batch-cbor"] = await world.batch_read(caller, handle, cbor=True)
                if caller == "node admin":
                    answers["cli"] = await world.cli_read(handle)
            where = f"{caller} reading {handle} indexes={indexes} types={types}"
            assert len(set(answers.values())) == 1, (where, answers)
            code, seen = answers["rest"]
            assert (code, tuple(i for i, _, _ in seen)) == expected_read(row, caller), (where, answers)
            assert all(data != SEALED for _, _, data in seen), where       # no secret, ever


async def test_the_proxy_follows_the_same_view(world):
    for handle in (SHARED, PLAIN, GONE, "88.118.8/absent"):
        code, seen = await world.rest_read("anonymous", handle, (), ("URL",))
        status, location = await world.proxy(handle)
        if code == RC.SUCCESS:
            assert (status, location) == (302, seen[0][2].decode()), handle
        else:
            assert (status, location) == (404, None), handle


# ---------------------------------------------------------------- writes

NEW_URL = HandleValue(1, "URL", b"https://acme.example/new")
WRITES = {
    # op: (values sent, {caller: code})
    "create": ([NEW_URL], {"anonymous": 402, "prefix admin": 1, "other admin": 400, "partner": 400,
                           "node admin": 1}),
    "replace": ([NEW_URL, shared_values()[3], HandleValue(7, "NOTE", b"seven")],
                {"anonymous": 402, "prefix admin": 1, "other admin": 400, "partner": 400, "node admin": 1}),
    "modify": ([HandleValue(5, "NOTE", b"changed")],
               {"anonymous": 402, "prefix admin": 1, "other admin": 400, "partner": 1, "node admin": 1}),
    "modify read-only": ([HandleValue(4, "DESC", b"changed", permissions=0x0A)],
                         {"anonymous": 402, "prefix admin": 401, "other admin": 401, "partner": 401,
                          "node admin": 401}),
    "add": ([HandleValue(6, "NOTE", b"six")],
            {"anonymous": 402, "prefix admin": 1, "other admin": 400, "partner": 1, "node admin": 1}),
    "remove": ([], {"anonymous": 402, "prefix admin": 1, "other admin": 400, "partner": 400, "node admin": 1}),
    "delete": ([], {"anonymous": 402, "prefix admin": 1, "other admin": 400, "partner": 400, "node admin": 1}),
    "create disabled": ([NEW_URL], {"anonymous": 402, "prefix admin": 400, "other admin": 400, "partner": 400,
                                    "node admin": 401}),
    # A value past registry.max_value_bytes (64 KiB by default): INVALID_VALUE, nothing written.
    "create too large": ([NEW_URL, HandleValue(2, "DESC", b"x" * (64 * 1024))],
                         {"anonymous": 402, "prefix admin": 202, "other admin": 400, "partner": 400,
                          "node admin": 202}),
    "add too large": ([HandleValue(6, "NOTE", b"x" * (64 * 1024))],
                      {"anonymous": 402, "prefix admin": 202, "other admin": 400, "partner": 202,
                       "node admin": 202}),
}
FRONT_ENDS = {
    "create": ("rest", "batch-json", "batch-cbor", "hs-tcp", "hs-http", "hs-session", "hs-login", "cli"),
    "replace": ("rest", "batch-json", "batch-cbor", "hs-tcp", "hs-http", "hs-session", "hs-login", "cli"),
    "modify": ("rest", "hs-tcp", "hs-http", "hs-session", "hs-login"),
    "modify read-only": ("rest", "hs-tcp", "hs-http", "hs-session", "hs-login"),
    "add": ("rest", "hs-tcp", "hs-http", "hs-session", "hs-login"),
    "remove": ("rest", "hs-tcp", "hs-http", "hs-session", "hs-login"),
    "delete": ("rest", "hs-tcp", "hs-http", "hs-session", "hs-login", "cli"),
    "create disabled": ("rest", "batch-json", "batch-cbor", "hs-tcp", "hs-http", "hs-session", "hs-login", "cli"),
    "create too large": ("rest", "batch-json", "batch-cbor", "hs-tcp", "hs-http", "hs-session", "hs-login", "cli"),
    "add too large": ("rest", "hs-tcp", "hs-http", "hs-session", "hs-login"),
}


def target(op: str, fe: str, caller: str) -> str:
    prefix = "88.118.11" if op == "create disabled" else "88.118.8"
    return f"{prefix}/{re.sub(r'[^a-z]+', '-', f'{op} {fe} {caller}')}"


async def test_every_front_end_writes_the_same(world):
    jobs = [(op, fe, caller) for op in WRITES for fe in (*FRONT_ENDS[op], "hs-udp") for caller in CALLERS
            if fe != "cli" or caller == "node admin"]
    # Every write gets a target of its own, set up identically (the creates get none).
    items = [(target(op, fe, caller), shared_values()) for op, fe, caller in jobs if not op.startswith("create")]
    assert all(r.code == RC.SUCCESS for r in await world.store.register_batch(items, overwrite=False, actor="t"))

    outcomes: dict[tuple[str, str], dict[str, tuple]] = {}
    for op, fe, caller in jobs:
        handle, values = target(op, fe, caller), WRITES[op][0]
        kind = op.removesuffix(" too large")                 # the same request, with a value too large
        if fe == "rest":
            code = await world.rest_write(caller, kind, handle, values)
        elif fe.startswith("batch"):
            code = await world.batch_write(caller, kind, handle, values, cbor=fe == "batch-cbor")
        elif fe.startswith("hs-"):
            code = await world.hs_write(fe[3:], caller, kind, handle, values)
        else:
            code = await world.cli_write(kind, handle, values)
        record = await world.store.get_handle(handle)
        outcomes.setdefault((op, caller), {})[fe] = (code, shape(record.values) if record else None)

    for (op, caller), by_front_end in outcomes.items():
        # Administration is not served over UDP: steered to TCP (RC 2), nothing written.
        untouched = None if op.startswith("create") else shape(shared_values())
        assert by_front_end.pop("hs-udp") == (RC.ERROR, untouched), (op, caller)
        where = f"{caller}: {op}"
        states = {state for _, state in by_front_end.values()}
        assert len(states) == 1, (where, by_front_end)                   # the same record everywhere
        codes = {code for fe, (code, _) in by_front_end.items() if fe != "cli"}
        assert codes == {WRITES[op][1][caller]}, (where, by_front_end)
        if "cli" in by_front_end:                                        # the operator: the node admin's lot
            assert (by_front_end["cli"][0] == RC.SUCCESS) == (WRITES[op][1][caller] == RC.SUCCESS), where

    # What a permitted write left, spot-checked: read-only values keep their data, secrets stay sealed.
    replaced = await world.store.get_handle(target("replace", "rest", "prefix admin"))
    assert [(v.index, v.data) for v in replaced.values] == [(1, NEW_URL.data), (4, b"fixed"), (7, b"seven")]
    kept = await world.store.get_handle(target("modify read-only", "hs-tcp", "node admin"))
    assert shape(kept.values) == shape(shared_values())
    assert all(v.data != b"secret-one" for v in kept.values)


async def test_a_write_that_changes_nothing_writes_nothing(world):
    """Resending a record as it is (read-only values included) is allowed to
    whoever may change it, keeps every timestamp, and leaves no audit entry."""
    handle = "88.118.8/same-again"
    await world.store.put_handle(handle, shared_values(), mode="create", actor="t")
    before = await world.store.get_handle(handle)
    seq = await world.store.last_seq()
    async with world.client("tcp") as client:                 # the read-only value 4, and 5, as they are
        await client.add_values(handle, [v for v in before.values if v.index in (4, 5)],
                                world.auth("prefix admin"), overwrite=True)
    assert await world.store.last_seq() == seq
    assert [v.timestamp for v in (await world.store.get_handle(handle)).values] == [v.timestamp for v in before.values]
    assert await world.rest_write("other admin", "modify", handle, [before.values[4]]) == RC.NOT_AN_ADMIN


# ---------------------------------------------------------------- listing a prefix

LISTS = {"anonymous": RC.AUTHENTICATION_NEEDED, "prefix admin": RC.SUCCESS, "other admin": RC.NOT_AN_ADMIN,
         "partner": RC.NOT_AN_ADMIN, "node admin": RC.SUCCESS}


async def test_every_front_end_lists_the_same(world):
    """REST (cursors, and Handle.Net's page numbers), the Handle protocol's list
    handles and the CLI's export agree on who may list a prefix and what is in it."""
    listed = [f"88.118.8/l-{i:03d}" for i in range(25)]
    for name in listed:
        await world.store.put_handle(name, [HandleValue(1, "URL", b"https://acme.example/l")], mode="create",
                                     actor="t")
    expected = sorted(["88.118.8/ADMIN", SHARED, PLAIN, *listed], key=str.lower)
    for caller in CALLERS:
        answers = {}
        pages, cursor, code = [], None, RC.SUCCESS
        while True:                                               # REST, following the cursor
            params = {"prefix": "88.118.8", "pageSize": "7", **({"cursor": cursor} if cursor else {})}
            async with world.session.get(f"{world.url}/api/handles", params=params,
                                         headers=world.headers(caller)) as r:
                doc = await r.json()
            if doc["responseCode"] != RC.SUCCESS:
                code = doc["responseCode"]
                break
            pages += doc["handles"]
            cursor = doc["next"]
            if cursor is None:
                break
        answers["rest"] = (code, pages if code == RC.SUCCESS else [])
        numbered = []                                             # REST, by page numbers
        for page in range(6):
            async with world.session.get(f"{world.url}/api/handles", headers=world.headers(caller),
                                         params={"prefix": "88.118.8", "pageSize": "7", "page": str(page)}) as r:
                doc = await r.json()
            numbered += doc.get("handles", [])
        answers["rest-pages"] = (doc["responseCode"], numbered)
        for transport in ("tcp", "http"):
            async with world.client(transport) as client:
                try:
                    answers[f"hs-{transport}"] = (RC.SUCCESS, await client.list_handles("88.118.8",
                                                                                        world.auth(caller)))
                except HandleResponseError as exc:
                    answers[f"hs-{transport}"] = (exc.code, [])
        if caller == "node admin":
            status, out, err = await world.cli("export", "--prefix", "88.118.8")
            assert status == 0, err
            answers["cli"] = (RC.SUCCESS, [orjson.loads(line)["handle"] for line in out.splitlines()])
        want = (LISTS[caller], expected if LISTS[caller] == RC.SUCCESS else [])
        assert all(got == want for got in answers.values()), (caller, answers)


# ---------------------------------------------------------------- the store away

@pytest.fixture
async def away(tmp_path):
    """The world on a Redis store of its own, which the test stops."""
    from bench import redisproc
    server = redisproc.Server(redisproc.free_port(), tmp_path / "redis").start()
    try:
        settings = await provisioned(tmp_path, **{"store.url": server.url, "store.timeout": 0.3,
                                                  "store.write_deadline": 1.0})
        async with serving(settings, clock=lambda: NOW) as running, aiohttp.ClientSession() as session:
            yield World(running, session, settings.home), server
    finally:
        server.stop()


async def test_every_front_end_says_the_same_when_the_store_is_away(away):
    """Redis stopped: every read of an uncached identifier and every write,
    by anyone, over every front end, is RC 3 (REST and batch: 503), never
    an authentication failure; and no caller is locked out for it."""
    world, server = away
    server.stop()
    for caller in CALLERS:
        reads = {"rest": (await world.rest_read(caller, PLAIN, (), ()))[0],
                 "batch-json": (await world.batch_read(caller, PLAIN, cbor=False))[0],
                 "batch-cbor": (await world.batch_read(caller, PLAIN, cbor=True))[0],
                 **{f"hs-{t}": (await world.hs_read(t, caller, PLAIN, (), ()))[0]
                    for t in ("tcp", "udp", "http", "session")}}
        assert set(reads.values()) == {RC.SERVER_BUSY}, (caller, reads)
        values = [NEW_URL]
        writes = {"rest": await world.rest_write(caller, "replace", PLAIN, values),
                  "batch-json": await world.batch_write(caller, "replace", PLAIN, values, cbor=False),
                  "batch-cbor": await world.batch_write(caller, "replace", PLAIN, values, cbor=True),
                  **{f"hs-{t}": await world.hs_write(t, caller, "replace", PLAIN, values)
                     for t in ("tcp", "http", "session", "login")}}
        want = RC.AUTHENTICATION_NEEDED if caller == "anonymous" else RC.SERVER_BUSY
        assert set(writes.values()) == {want}, (caller, writes)
    for args in (("resolve", PLAIN, "--json"), ("delete", PLAIN)):            # the operator
        status, out, err = await world.cli("--store", server.url, *args)
        assert status == 1 and "cannot reach the Redis store" in err and out == "", (args, err)

    server.start()                           # back: nobody was locked out by the outage
    code = RC.SERVER_BUSY
    while code == RC.SERVER_BUSY:            # until the node's connections are back (redis-py's retries)
        await asyncio.sleep(0.1)
        code = await world.rest_write("prefix admin", "replace", PLAIN, [NEW_URL])
    assert code == RC.SUCCESS
    assert await world.rest_write("node admin", "replace", PLAIN, [NEW_URL]) == RC.SUCCESS
    assert await world.hs_write("tcp", "partner", "modify", PLAIN, [NEW_URL]) == RC.NOT_AN_ADMIN   # judged again
    assert await world.hs_write("tcp", "prefix admin", "replace", PLAIN, [NEW_URL]) == RC.SUCCESS


# ---------------------------------------------------------------- delegating a prefix

DELEGATES = {"anonymous": RC.AUTHENTICATION_NEEDED, "prefix admin": RC.NOT_AN_ADMIN, "other admin": RC.NOT_AN_ADMIN,
             "partner": RC.NOT_AN_ADMIN, "node admin": RC.SUCCESS}


async def test_every_front_end_agrees_on_delegation(world):
    """Only the node admin (REST) and the operator (CLI) delegate; the prefix
    record they leave reads the same to everyone over every front end."""
    for caller in CALLERS:
        async with world.session.put(f"{world.url}/api/prefixes/88.118.8/delegation", headers=world.headers(caller),
                                     json={"site": "192.0.2.8:2641"}) as r:
            assert (await r.json())["responseCode"] == DELEGATES[caller], caller
    status, _, err = await world.cli("prefix", "delegate", "88.118.10", "--service", "0.NA/88.118.10.SERV")
    assert status == 0, err
    # 88.118.9 is not delegated: its record is made from the serving node's own site, which the CLI, not
    # serving, does not know (it answers only stored prefix records).
    for handle, kind in (("0.NA/88.118.8", "HS_SITE"), ("0.NA/88.118.10", "HS_SERV"), ("0.NA/88.118.9", "HS_SITE")):
        for caller in CALLERS:
            answers = {"rest": await world.rest_read(caller, handle, (), ()),
                       "batch-json": await world.batch_read(caller, handle, cbor=False),
                       **{f"hs-{t}": await world.hs_read(t, caller, handle, (), ()) for t in ("tcp", "udp", "http")}}
            if caller == "node admin" and handle != "0.NA/88.118.9":
                answers["cli"] = await world.cli_read(handle)
            assert len(set(answers.values())) == 1, (caller, handle, answers)
            code, seen = answers["rest"]
            assert code == RC.SUCCESS and [t for _, t, _ in seen] == [kind, "HS_ADMIN"], (caller, handle, seen)
    # What a miss means, the same everywhere: referred under the delegated prefix, not ours outside the node's.
    for handle, want in (("88.118.8/not-here", RC.SERVICE_REFERRAL), ("88.118.10/not-here", RC.SERVICE_REFERRAL),
                         ("86.100.1/x", RC.SERVER_NOT_RESPONSIBLE), ("88.118.77/x", RC.SERVER_NOT_RESPONSIBLE)):
        for caller in CALLERS:
            answers = {"rest": await world.rest_read(caller, handle, (), ()),
                       "batch-json": await world.batch_read(caller, handle, cbor=False),
                       **{f"hs-{t}": await world.hs_read(t, caller, handle, (), ()) for t in ("tcp", "udp", "http")}}
            if caller == "node admin":
                answers["cli"] = await world.cli_read(handle)
            assert set(answers.values()) == {(want, ())}, (caller, handle, answers)


# ---------------------------------------------------------------- the hierarchy: prefix records kept from below

KEEPS = {"anonymous": RC.AUTHENTICATION_NEEDED, "prefix admin": RC.SUCCESS, "other admin": RC.NOT_AN_ADMIN,
         "partner": RC.NOT_AN_ADMIN, "node admin": RC.SUCCESS}


async def test_every_front_end_agrees_on_who_keeps_the_prefix_records_below_a_prefix(world):
    """The admin of 88.118.8 keeps the prefix records 0.NA/88.118.8.* here (as
    a secondary node keeps its enterprise prefixes' records at the top-level
    node that allocated its prefix); nobody else but the node admin does."""
    site = HandleValue(1, "HS_SITE", b"\x00" * 8)
    n = 0
    for caller in CALLERS:
        for fe in ("rest", "batch-json", "batch-cbor", "hs-tcp", "hs-http", "hs-session", "hs-login"):
            n += 1
            handle = f"0.NA/88.118.8.{n}"
            if fe == "rest":
                code = await world.rest_write(caller, "create", handle, [site])
            elif fe.startswith("batch"):
                code = await world.batch_write(caller, "create", handle, [site], cbor=fe == "batch-cbor")
            else:
                code = await world.hs_write(fe[3:], caller, "create", handle, [site])
            written = await world.store.get_handle(handle)
            assert (code, written is not None) == (KEEPS[caller], KEEPS[caller] == RC.SUCCESS), (caller, fe)
    code = await world.rest_write("prefix admin", "create", "0.NA/88.118.9.1", [site])     # not under its prefix
    assert code == RC.NOT_AN_ADMIN and await world.store.get_handle("0.NA/88.118.9.1") is None


# ---------------------------------------------------------------- the hierarchy: recursion

async def test_every_front_end_agrees_on_recursion(tmp_path):
    """With recursion on, a client that asks for it gets the other node's
    answer over every front end that can ask (Handle REC, REST
    ?recursive=true), whoever it is; a client outside allow_recursion_from
    gets the referral everywhere. Batch and the CLI never ask for recursion."""
    from tests.upstreams import Upstream, site_value
    upstream = await Upstream().start()
    try:
        for allowed, want in (("127.0.0.0/8", (RC.SUCCESS, ((1, "URL", b"https://upstream.example/x"),))),
                              ("10.0.0.0/8", (RC.SERVICE_REFERRAL, ()))):
            settings = await provisioned(tmp_path / allowed.replace("/", "-"), **{
                "upstream.recursion": True, "upstream.allow_recursion_from": allowed})
            store = store_of(settings)
            await store.open()
            await provision.delegate_prefix(store, "88.118.9", site_value(upstream.port), actor="test")
            await store.close()
            async with serving(settings, clock=lambda: NOW) as running, aiohttp.ClientSession() as session:
                w = World(running, session, settings.home)
                for caller in CALLERS:
                    async with session.get(f"{w.url}/api/handles/88.118.9/far?recursive=true",
                                           headers=w.headers(caller)) as r:
                        doc = await r.json()
                    answers = {"rest": (doc["responseCode"], shape(values_from_json(doc.get("values", []))))}
                    for t in ("tcp", "udp", "http", "session"):
                        answers[f"hs-{t}"] = await w.hs_read(t, caller, "88.118.9/far", (), ())
                    assert set(answers.values()) == {want}, (allowed, caller, answers)
                    batch = await w.batch_read(caller, "88.118.9/far", cbor=False)
                    assert batch == (RC.SERVICE_REFERRAL, ()), (caller, batch)
    finally:
        await upstream.stop()

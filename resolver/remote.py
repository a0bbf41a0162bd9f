"""The CLI's client of a running node's REST API (``idnode ... --server URL``).

:class:`Remote` makes the requests: one aiohttp session per command, HTTP
Basic with the identity as the user, percent-encoded as pyhandle sends it.
:class:`RemoteCore` offers the operations the CLI's commands call on
:class:`resolver.core.Core` (put, delete, batch registration, prefixes) over
that API, so a command runs the same code, prints the same lines and exits
the same way against a remote node as against the local store.

A node's refusal of what was asked (400, 403, 404, 409 with a Handle
``responseCode``) is raised as the operations layer's :class:`Refused`, code
and message as the node's own operations layer gave them. Everything else
(unreachable, timed out, credentials refused or locked out, a server error,
an answer that is not the API's JSON) is a :class:`RemoteError` with one
line of text naming the server. The password is never part of either.
"""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any, Awaitable, Callable, Sequence, TypeVar
from urllib.parse import quote

import aiohttp
import orjson

from protocol.codes import RC
from protocol.identifier import Handle
from protocol.jsoncodec import value_to_json
from protocol.values import HandleValue
from registry.model import HandleRecord, ItemResult, PrefixInfo
from registry.secrets import generate_secret

from .core.caller import Caller
from .core.errors import Refused
from .settings import HttpSettings

T = TypeVar("T")
BATCH_MAX_ITEMS = HttpSettings().batch_max_items      # a node's default limit; a smaller one is met by halving
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0        # a batch of 2,000 identifiers is one transaction on the node
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


class RemoteError(Exception):
    """A request to the node failed other than by a refusal of what was asked (one line of text)."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _reason(exc: BaseException) -> str:
    """The one-line cause of a client error (aiohttp nests the OS error)."""
    cause = getattr(exc, "os_error", None) or exc
    errno = getattr(cause, "errno", None)
    text = os.strerror(errno) if isinstance(errno, int) and errno > 0 else str(cause)
    return " ".join(text.split())[:200] or type(exc).__name__


def value_json(value: HandleValue) -> dict:
    """One value as a PUT or batch body carries it. A secret (HS_SECKEY) value,
    which :func:`value_to_json` never renders for an answer, goes as base64."""
    if not value.is_secret:
        return value_to_json(value)
    out = value_to_json(value.with_(type="", data=b""))
    out.update(type=value.type, data={"format": "base64", "value": base64.b64encode(value.data).decode("ascii")})
    return out


class Remote:
    """Requests to one node's REST API, as ``user`` (anonymous without).
    ``new_secret``: the secret a prefix created or given a new secret gets
    (None: one is generated here and shown once)."""

    def __init__(self, server: str, user: str | None = None, password: str | None = None, *,
                 new_secret: str | None = None) -> None:
        self.server = server.rstrip("/")
        self.user = user
        self.new_secret = new_secret
        self._headers = dict(_JSON)
        if user:       # the user percent-encoded (it holds ':'), as pyhandle sends it
            token = base64.b64encode(f"{quote(user, safe='')}:{password or ''}".encode("utf-8", "surrogatepass"))
            self._headers["Authorization"] = f"Basic {token.decode('ascii')}"
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Remote:
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
        self._session = aiohttp.ClientSession(timeout=timeout, headers=self._headers)
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, path: str, *, params: dict | None = None, body: Any = None) -> dict:
        """The JSON answer of a successful request (responseCode 1 or, for a read, 200);
        :class:`Refused` or :class:`RemoteError` otherwise."""
        return (await self.request(method, path, params=params, body=body))[1]

    async def request(self, method: str, path: str, *, params: dict | None = None,
                      body: Any = None) -> tuple[int, dict]:
        """As :meth:`call`, with the HTTP status."""
        assert self._session is not None, "use Remote as an async context manager"
        data = orjson.dumps(body) if body is not None else None
        try:
            async with self._session.request(method, self.server + path, params=params, data=data) as resp:
                raw = await resp.read()
        except aiohttp.ClientConnectorError as exc:
            raise RemoteError(f"cannot reach {self.server}: {_reason(exc)}") from None
        except aiohttp.InvalidURL:
            raise RemoteError(f"{self.server!r} is not a usable URL") from None
        except aiohttp.ClientError as exc:
            raise RemoteError(f"{self.server}: {_reason(exc)}") from None
        except asyncio.TimeoutError:
            raise RemoteError(f"{self.server} did not answer in time") from None
        try:
            doc = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("responseCode"), int):
            raise RemoteError(f"{self.server} answered HTTP {resp.status} without the API's JSON "
                              f"(is {self.server} a node's REST API?)", status=resp.status)
        if resp.status >= 400 or doc["responseCode"] not in (RC.SUCCESS, RC.VALUES_NOT_FOUND):
            raise self._failure(resp.status, doc, resp.headers.get("Retry-After"))
        return resp.status, doc

    def _failure(self, status: int, doc: dict, retry_after: str | None) -> Exception:
        code = doc["responseCode"]
        message = doc.get("message") if isinstance(doc.get("message"), str) else ""
        message = " ".join(message.split())[:300] or f"response code {code}"
        later = f" (try again in {retry_after} s)" if retry_after and retry_after.isdigit() else ""
        if status in (401, 429):
            who = self.user or "an anonymous caller"
            return RemoteError(f"{self.server} refused {who}: {message}{later}", status=status, code=code)
        if status >= 500 or status == 413:
            return RemoteError(f"{self.server} answered HTTP {status}: {message}{later}", status=status, code=code)
        return Refused(code, message)


def _handle_path(handle: str) -> str:
    return f"/api/handles/{quote(handle, safe='/')}"


def _prefix_path(prefix: str, action: str = "") -> str:
    return f"/api/prefixes/{quote(prefix, safe='')}{action}"


def _prefix_info(doc: dict) -> PrefixInfo:
    def text(key: str) -> str:
        value = doc.get(key)
        return value if isinstance(value, str) else ""
    created = doc.get("created")
    return PrefixInfo(text("prefix"), text("owner"), text("creditCode"), text("contact"), text("state"),
                      created if isinstance(created, int) else 0)


class RemoteCore:
    """The operations of :class:`resolver.core.Core` the CLI's commands use,
    done by a remote node as the identity of ``remote``. The ``caller``
    arguments are taken for the same signatures and ignored: the node decides
    by the credentials sent."""

    def __init__(self, remote: Remote, *, batch_items: int = BATCH_MAX_ITEMS) -> None:
        self.remote = remote
        self.batch_items = batch_items

    # -- identifiers ----------------------------------------------------------------
    async def put(self, caller: Caller, handle: Handle, values: Sequence[HandleValue], *,
                  overwrite: bool) -> tuple[HandleRecord, bool]:
        status, doc = await self.remote.request("PUT", _handle_path(handle.text),
                                                params={"overwrite": str(overwrite).lower()},
                                                body={"values": [value_json(v) for v in values]})
        name = doc.get("handle") if isinstance(doc.get("handle"), str) else handle.text
        return HandleRecord(name, tuple(values)), status == 201

    async def delete(self, caller: Caller, handle: Handle) -> None:
        await self.remote.call("DELETE", _handle_path(handle.text))

    async def register_batch(self, caller: Caller, items: Sequence[tuple["str | Handle", Sequence[HandleValue]]],
                             *, overwrite: bool) -> list[ItemResult]:
        """``POST /api/batch/register`` in requests of at most ``batch_items``
        items; a node that refuses a request as too large (413, nothing written)
        gets it again in halves. One result per item, in order."""
        results: list[ItemResult] = []
        start = 0
        while start < len(items):
            chunk = items[start:start + self.batch_items]
            body = {"overwrite": overwrite,
                    "items": [{"handle": str(h), "values": [value_json(v) for v in values]} for h, values in chunk]}
            try:
                doc = await self.remote.call("POST", "/api/batch/register", body=body)
            except RemoteError as exc:
                if exc.status == 413 and len(chunk) > 1:
                    self.batch_items = len(chunk) // 2
                    continue
                raise
            results += self._item_results(doc, chunk)
            start += len(chunk)
        return results

    def _item_results(self, doc: dict, chunk: Sequence[tuple[str, Any]]) -> list[ItemResult]:
        answered = doc.get("results")
        if not isinstance(answered, list) or len(answered) != len(chunk):
            raise RemoteError(f"{self.remote.server} answered a batch of {len(chunk)} items without "
                              f"{len(chunk)} results")
        out = []
        for (handle, _), result in zip(chunk, answered):
            code = result.get("responseCode") if isinstance(result, dict) else None
            if not isinstance(code, int):
                raise RemoteError(f"{self.remote.server} answered a batch result without a responseCode")
            message = result.get("message")
            out.append(ItemResult(str(handle), code, message if isinstance(message, str) else ""))
        return out

    # -- prefixes -------------------------------------------------------------------
    async def list_prefixes(self, caller: Caller) -> list[PrefixInfo]:
        doc = await self.remote.call("GET", "/api/prefixes")
        listed = doc.get("prefixes")
        return [_prefix_info(p) for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []

    async def show_prefix(self, caller: Caller, prefix: str) -> PrefixInfo:
        return _prefix_info(await self.remote.call("GET", _prefix_path(prefix)))

    def _secret(self, password: str | None) -> tuple[str, str | None]:
        """``(secret to send, secret to show once)``: the node never sends one
        back, so one to generate is made here."""
        given = password if password is not None else self.remote.new_secret
        if given is not None:
            return given, None
        generated = generate_secret()
        return generated, generated

    async def create_prefix(self, caller: Caller, prefix: str, owner: str, *, credit_code: str = "",
                            contact: str = "", password: str | None = None,
                            public_key: str | bytes | None = None) -> tuple[PrefixInfo, str | None]:
        body: dict[str, Any] = {"owner": owner, "creditCode": credit_code, "contact": contact}
        shown = None
        if public_key is not None:             # a key identity: the PEM, no secret
            body["publicKey"] = public_key.decode("utf-8", "replace") if isinstance(public_key, bytes) else public_key
        else:
            body["password"], shown = self._secret(password)
        return _prefix_info(await self.remote.call("PUT", _prefix_path(prefix), body=body)), shown

    async def set_prefix_state(self, caller: Caller, prefix: str, enabled: bool) -> PrefixInfo:
        action = "/enable" if enabled else "/disable"
        return _prefix_info(await self.remote.call("POST", _prefix_path(prefix, action)))

    async def rotate_prefix_secret(self, caller: Caller, prefix: str, password: str | None = None) -> str | None:
        secret, shown = self._secret(password)
        await self.remote.call("PUT", _prefix_path(prefix, "/password"), body={"password": secret})
        return shown

    async def add_prefix_key(self, caller: Caller, prefix: str, public_key: str | bytes,
                             index: int | None = None) -> tuple[int, int]:
        """``(key index, HS_ADMIN index)`` of the key the node added to ``<prefix>/ADMIN``."""
        pem = public_key.decode("utf-8", "replace") if isinstance(public_key, bytes) else public_key
        body: dict[str, Any] = {"publicKey": pem} if index is None else {"publicKey": pem, "index": index}
        doc = await self.remote.call("POST", _prefix_path(prefix, "/keys"), body=body)
        key_index, admin_index = doc.get("index"), doc.get("adminIndex")
        if not isinstance(key_index, int) or not isinstance(admin_index, int):
            raise RemoteError(f"{self.remote.server} answered without the indexes of the key it added")
        return key_index, admin_index


    async def delegate_prefix(self, caller: Caller, prefix: str, *, site: str | None = None,
                              service: str | None = None) -> dict:
        body = {k: v for k, v in (("site", site), ("service", service)) if v is not None}
        doc = await self.remote.call("PUT", _prefix_path(prefix, "/delegation"), body=body)
        return doc.get("delegation")

    async def undelegate_prefix(self, caller: Caller, prefix: str) -> None:
        await self.remote.call("DELETE", _prefix_path(prefix, "/delegation"))

    async def delegation(self, caller: Caller, prefix: str) -> dict | None:
        return (await self.remote.call("GET", _prefix_path(prefix))).get("delegation")


def run_remote(remote: Remote, work: Callable[[RemoteCore], Awaitable[T]]) -> T:
    """Run ``await work(core)`` with a :class:`RemoteCore` over ``remote``."""
    async def main() -> T:
        async with remote:
            return await work(RemoteCore(remote))
    return asyncio.run(main())


async def get_handle(server: str, handle: str) -> dict:
    """``GET /api/handles/{handle}`` anonymously: the record's JSON (``idnode resolve --server``)."""
    async with Remote(server) as remote:
        return await remote.call("GET", _handle_path(handle))

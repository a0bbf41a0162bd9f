"""HTTP Basic authentication of admin identities, with delay and lock-out.

The user part is an admin identity ``index:handle`` (``300:88.118.8/ADMIN``),
percent-encoded by clients such as pyhandle. Passwords are checked against
the slow scrypt hash in the store (on a worker thread); a successful check is
remembered for a short time under an HMAC of the secret so that a client
making many requests does not pay scrypt each time. Failures are delayed,
counted per address and per identity, and lock the source out for a while.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote

from protocol.codes import RC
from registry.model import AdminIdentity
from registry.secrets import verify_password
from registry.store import Store

from .settings import AuthSettings


class AuthError(Exception):
    """Authentication failed or is needed; carries the Handle response code."""

    def __init__(self, code: RC, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated admin identity; ``scope`` None means node admin."""
    identity: str
    scope: str | None

    @property
    def is_node_admin(self) -> bool:
        return self.scope is None

    def may_admin(self, prefix: str) -> bool:
        return self.scope is None or self.scope.lower() == prefix.lower()


def parse_identity(user: str) -> tuple[int, str]:
    """``300:88.118.8/ADMIN`` -> (300, "88.118.8/ADMIN"); ValueError if malformed."""
    index, sep, handle = unquote(user).partition(":")
    if not sep or not index.isdigit() or "/" not in handle:
        raise ValueError("user must be an admin identity like 300:88.118.8/ADMIN")
    return int(index), handle


class Authenticator:
    def __init__(self, store: Store, settings: AuthSettings,
                 clock: Callable[[], float] = time.monotonic, verified_ttl: float = 60.0):
        self._store = store
        self._settings = settings
        self._clock = clock
        self._verified_ttl = verified_ttl
        self._cache_key = os.urandom(32)
        self._verified: dict[bytes, tuple[float, Principal]] = {}
        self._failures: dict[str, tuple[int, float]] = {}   # source -> (count, first failure)

    def _locked(self, source: str) -> bool:
        entry = self._failures.get(source)
        if entry is None:
            return False
        count, since = entry
        if self._clock() - since > self._settings.lockout_seconds:
            del self._failures[source]
            return False
        return count >= self._settings.lockout_failures

    def _record_failure(self, source: str) -> None:
        count, since = self._failures.get(source, (0, self._clock()))
        self._failures[source] = (count + 1, since)
        if len(self._failures) > 100_000:      # bound memory under a spray of sources
            self._failures.pop(next(iter(self._failures)))

    async def _fail(self, sources: list[str], message: str) -> AuthError:
        for s in sources:
            self._record_failure(s)
        await asyncio.sleep(self._settings.failure_delay)
        return AuthError(RC.AUTHENTICATION_FAILED, message)

    async def authenticate(self, header: str | None, peer: str) -> Principal | None:
        """Return the principal, None without credentials; raise AuthError."""
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            raise AuthError(RC.AUTHENTICATION_ERROR, "only HTTP Basic authentication is supported")
        try:
            user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
            if not sep:
                raise ValueError("no ':' in credentials")
            index, handle = parse_identity(user)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise AuthError(RC.INVALID_CREDENTIAL, "malformed Basic credentials; user must be an admin identity like 300:88.118.8/ADMIN") from None
        identity = f"{index}:{handle}"
        sources = [f"addr:{peer}", f"id:{identity.lower()}"]
        if any(self._locked(s) for s in sources):
            raise AuthError(RC.AUTHENTICATION_FAILED, "too many failed attempts; try again later")
        cache_key = hmac.new(self._cache_key, f"{identity.lower()}\0{password}".encode(), hashlib.sha256).digest()
        hit = self._verified.get(cache_key)
        if hit is not None and hit[0] > self._clock():
            principal = hit[1]
        else:
            admin: AdminIdentity | None = await self._store.get_admin(handle, index)
            stored = admin.password_hash if admin else None
            ok = await asyncio.get_running_loop().run_in_executor(None, verify_password, password, stored)
            if not ok or admin is None:
                raise await self._fail(sources, "authentication failed")
            principal = Principal(admin.identity, admin.scope)
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[cache_key] = (self._clock() + self._verified_ttl, principal)
            for s in sources:
                self._failures.pop(s, None)
        if principal.scope is not None:      # checked on every request: disabling takes effect at once
            info = await self._store.get_prefix(principal.scope)
            if info is None or info.state != "enabled":
                raise AuthError(RC.AUTHENTICATION_FAILED, f"prefix {principal.scope} is disabled")
        return principal

"""Authentication, once for every front end: HTTP Basic secrets and Handle
challenge answers both prove an identity ``index:handle`` and both go
through the one lock-out policy (:mod:`.lockout`).

* **Basic** (REST, batch, the proxy): the user is the identity
  (``300:88.118.8/ADMIN``, percent-encoded as pyhandle sends it), the
  password its secret (a key identity, whose index holds an HS_PUBKEY, has
  none: it is refused, told to answer a Handle challenge instead). A
  provisioned admin is checked against its slow scrypt hash (on a worker
  thread); a success is remembered for a minute under an HMAC of the secret
  *and the stored hash*, so a client making many requests pays scrypt once
  and a rotated secret stops working at once. Any other
  identity with a secret value (``HS_SECKEY`` at that index) is checked
  against that secret in constant time.
* **Challenge answers** (the Handle protocol, RFC 3652 section 3.5): a MAC
  over the nonce and request digest with the secret of an HS_SECKEY value,
  or a signature with the private key of an HS_PUBKEY value.

An identity acts only while its own prefix is allocated here and enabled
(the node admin has no prefix). Failures are counted for the source, delayed,
and a locked-out source is refused without a check.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import time
from typing import Awaitable, Callable
from urllib.parse import unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa

from protocol.codes import RC
from protocol.handle import (PUBLIC_KEY, SECRET_KEY, ChallengeAnswerRequest, HandleProtocolError, PublicKeyAnswer,
                             challenge_data, verify_secret_key_answer)
from protocol.identifier import InvalidHandle, parse_handle
from protocol.values import Perm, is_secret_type
from protocol.valuetypes import PublicKey, WireError, has_type
from registry.errors import RegistryError, StoreUnavailable
from registry.secrets import verify_password
from registry.store import Store

from .caller import Caller, Identity, scope_of
from .errors import Refused, refused
from .lockout import Lockout

VERIFIED_TTL = 60.0
MAX_VERIFIED = 10_000


def parse_identity(user: str) -> tuple[int, str]:
    """``300:88.118.8/ADMIN`` (percent-encoded or not) -> (300, "88.118.8/ADMIN"); ValueError if malformed."""
    index, sep, handle = unquote(user).partition(":")
    if not sep or not index.isdigit() or "/" not in handle or int(index) > 0xFFFFFFFF:
        raise ValueError("user must be an admin identity like 300:88.118.8/ADMIN")
    return int(index), handle


_HASHES = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512,
           "MD5": hashes.MD5}


def _verify_signature(key: PublicKey, hash_alg: str, signature: bytes, data: bytes) -> bool:
    hash_cls = _HASHES.get(hash_alg.upper().replace("-", ""))
    if hash_cls is None or not key.known:
        return False
    n = key.numbers()
    try:
        if key.key_type == "RSA_PUB_KEY":
            rsa.RSAPublicNumbers(n["e"], n["n"]).public_key().verify(signature, data, padding.PKCS1v15(),
                                                                     hash_cls())
        elif key.key_type == "DSA_PUB_KEY":
            params = dsa.DSAParameterNumbers(n["p"], n["q"], n["g"])
            dsa.DSAPublicNumbers(n["y"], params).public_key().verify(signature, data, hash_cls())
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


class Authenticator:
    def __init__(self, store: Store, lockout: Lockout, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_failure: Callable[[str], None] | None = None) -> None:
        self._store = store
        self._lockout = lockout
        self._clock = clock
        self._sleep = sleep
        self._on_failure = on_failure          # counts failures by protocol (metrics)
        self._cache_key = os.urandom(32)
        self._verified: dict[bytes, tuple[float, Identity]] = {}

    # -- shared steps --------------------------------------------------------------
    async def _check_source(self, source: str, protocol: str) -> None:
        """Refuse a locked-out source without looking at what it sent (counted as a failure)."""
        try:
            await self._lockout.check(source)
        except Refused:
            if self._on_failure is not None:
                self._on_failure(protocol)
            raise

    async def _fail(self, source: str, protocol: str, message: str = "authentication failed",
                    code: int = RC.AUTHENTICATION_FAILED) -> Refused:
        if self._on_failure is not None:
            self._on_failure(protocol)
        await self._sleep(await self._lockout.failed(source))
        return Refused(code, message)

    async def check_source(self, source: str, protocol: str) -> None:
        """Refuse a locked-out source before looking at what it sent (Refused)."""
        await self._check_source(source, protocol)

    async def failed(self, source: str, protocol: str, message: str, code: int = RC.AUTHENTICATION_FAILED) -> Refused:
        """Count a failed proof that a front end checked itself (a session
        message's MAC, a session used from another address) under the one
        lock-out policy; the Refused to answer with."""
        return await self._fail(source, protocol, message, code)

    async def resume(self, handle: str, index: int, source: str, protocol: str) -> Caller:
        """The caller an earlier proof established (a session, a logged-in
        connection), checked again for this request: the identity's key or
        secret must still be there and its prefix enabled."""
        await self._check_source(source, protocol)
        try:
            identity = await self._identity(handle, index)
            record = await self._store.get_handle(handle) if identity is not None else None
        except StoreUnavailable as exc:      # the store is away: no verdict either way, and no lock-out (RC 3)
            raise refused(exc) from None
        except RegistryError:
            identity = record = None
        holds_key = record is not None and any(
            v.index == index and (is_secret_type(v.type) or has_type(v.type, PUBLIC_KEY)) for v in record.values)
        if identity is None or not holds_key:
            raise await self._fail(source, protocol, f"identity {index}:{handle} is no longer valid")
        return await self._enabled(identity, source, protocol)

    async def _enabled(self, identity: Identity, source: str, protocol: str) -> Caller:
        """The caller, if the identity's prefix lets it act."""
        if identity.scope is not None:
            info = await self._store.get_prefix(identity.scope)
            if info is None or not info.enabled:
                if self._on_failure is not None:
                    self._on_failure(protocol)
                raise Refused(RC.AUTHENTICATION_FAILED, f"prefix {identity.scope} is disabled or not served here")
        return Caller(identity, source)

    async def _identity(self, handle: str, index: int) -> Identity | None:
        """The identity ``index:handle`` as registered (None if the handle does not exist)."""
        admin = await self._store.get_admin(handle, index)
        if admin is not None:
            return Identity(admin.handle, index, admin.scope)
        record = await self._store.get_handle(handle)
        if record is None:
            return None
        return Identity(record.handle, index, scope_of(record.handle))

    # -- HTTP Basic -----------------------------------------------------------------
    async def basic(self, header: str | None, source: str, protocol: str = "rest") -> Caller:
        """The caller a Basic ``Authorization`` header proves (anonymous without one)."""
        if not header:
            return Caller(None, source)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            raise Refused(RC.AUTHENTICATION_ERROR, "only HTTP Basic authentication is supported")
        try:
            user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
            if not sep:
                raise ValueError("no ':' in credentials")
            index, handle = parse_identity(user)
            parse_handle(handle)
        except (ValueError, binascii.Error, UnicodeDecodeError, InvalidHandle):
            raise Refused(RC.INVALID_CREDENTIAL, "malformed Basic credentials; the user must be an admin "
                                                 "identity like 300:88.118.8/ADMIN") from None
        return await self.password(handle, index, password, source, protocol)

    async def password(self, handle: str, index: int, password: str, source: str, protocol: str) -> Caller:
        """The caller a secret proves for ``index:handle`` (HTTP Basic, the
        CAICT SDK's password login)."""
        await self._check_source(source, protocol)
        try:
            identity = await self._check_password(handle, index, password)
        except StoreUnavailable as exc:      # the store is away: no verdict either way, and no lock-out (RC 3)
            raise refused(exc) from None
        except RegistryError:
            identity = None
        if identity is None:
            raise await self._fail(source, protocol, await self._basic_failure(handle, index))
        return await self._enabled(identity, source, protocol)

    async def _basic_failure(self, handle: str, index: int) -> str:
        """Why Basic did not prove ``index:handle``: a key identity (its public
        key is public anyway) is told it needs its private key; anyone else
        just that it failed."""
        try:
            record = await self._store.get_handle(handle)
        except StoreUnavailable as exc:      # the store is away: no verdict either way, and no lock-out (RC 3)
            raise refused(exc) from None
        except RegistryError:
            record = None
        for v in record.values if record is not None else ():
            if v.index == index and has_type(v.type, PUBLIC_KEY) and v.permissions & Perm.PUBLIC_READ:
                return (f"{index}:{record.handle} is a key identity: it proves itself by signing a Handle "
                        "challenge with its private key, not with HTTP Basic")
        return "authentication failed"

    async def _check_password(self, handle: str, index: int, password: str) -> Identity | None:
        admin = await self._store.get_admin(handle, index)
        if admin is None:
            record = await self._store.get_handle(handle)
            if record is None or not any(v.index == index and is_secret_type(v.type) for v in record.values):
                # Unknown: spend the time a real check takes, so timing does not tell.
                await asyncio.get_running_loop().run_in_executor(None, verify_password, password, None)
                return None
            secret = await self._store.admin_secret(handle, index)
            if secret is None or not hmac.compare_digest(secret, password.encode("utf-8", "surrogatepass")):
                return None
            return Identity(record.handle, index, scope_of(record.handle))
        cache_key = hmac.new(self._cache_key, "\0".join((admin.identity.lower(), password, admin.password_hash))
                             .encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        hit = self._verified.get(cache_key)
        if hit is None or hit[0] <= self._clock():
            ok = await asyncio.get_running_loop().run_in_executor(None, verify_password, password,
                                                                  admin.password_hash)
            if not ok:
                return None
            if len(self._verified) >= MAX_VERIFIED:
                self._verified.clear()
            self._verified[cache_key] = (self._clock() + VERIFIED_TTL, Identity(admin.handle, index, admin.scope))
        return Identity(admin.handle, index, admin.scope)

    # -- Handle challenge answers ----------------------------------------------------------
    async def answer(self, nonce: bytes, digest: bytes, answer: ChallengeAnswerRequest, source: str,
                     protocol: str) -> Caller:
        """The caller a challenge answer proves, for the challenge ``nonce`` on a
        request whose digest was ``digest``."""
        await self._check_source(source, protocol)
        try:
            if answer.auth_type == SECRET_KEY:
                index = await self._secret_key_index(nonce, digest, answer)
            elif answer.auth_type == PUBLIC_KEY:
                index = await self._public_key_index(nonce, digest, answer)
            else:
                index = None
            identity = None if index is None else await self._identity(answer.key_handle, index)
        except StoreUnavailable as exc:      # the store is away: no verdict either way, and no lock-out (RC 3)
            raise refused(exc) from None
        except RegistryError:          # malformed key handle, unreadable secret: not proven
            identity = None
        if identity is None:
            raise await self._fail(source, protocol)
        return await self._enabled(identity, source, protocol)

    async def _secret_key_index(self, nonce: bytes, digest: bytes, answer: ChallengeAnswerRequest) -> int | None:
        """The index of the secret value the answer proves, or None."""
        if answer.key_index:
            indexes = [answer.key_index]
        else:                                             # index 0: any secret key of the handle
            record = await self._store.get_handle(answer.key_handle)
            indexes = [v.index for v in record.values if is_secret_type(v.type)] if record else []
        for index in indexes:
            secret = await self._store.admin_secret(answer.key_handle, index)
            if secret is None:
                continue
            ok = await asyncio.to_thread(verify_secret_key_answer, secret, nonce, digest, answer.answer)
            if ok:
                return index
        return None

    async def _public_key_index(self, nonce: bytes, digest: bytes, answer: ChallengeAnswerRequest) -> int | None:
        """The index of the HS_PUBKEY value whose private key signed the answer, or None."""
        try:
            signed = PublicKeyAnswer.from_bytes(answer.answer)
        except HandleProtocolError:
            return None
        record = await self._store.get_handle(answer.key_handle)
        data = challenge_data(nonce, digest)
        for v in record.values if record else ():
            if answer.key_index not in (0, v.index) or not has_type(v.type, PUBLIC_KEY):
                continue
            try:
                key = PublicKey.decode(v.data)
            except WireError:
                continue
            if _verify_signature(key, signed.hash_alg, signed.signature, data):
                return v.index
        return None

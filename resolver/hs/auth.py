"""Challenge-response authentication (RFC 3652 section 3.5), as Handle.Net 9 does it.

An administrative request without credentials is answered RC 402 with a
nonce and the digest of the request, under a fresh session id; the client
answers with opCode 200 in that session, naming its key (``index:handle``)
and proving it holds the secret (HS_SECKEY: a MAC over nonce + digest) or the
private key (HS_PUBKEY: a signature over them). The server then runs the
original request as that identity (``HandleServer.processRequest``).

* :class:`ChallengeBook` keeps the pending challenges, bounded in number (in
  all and per address) and in time; an answer is taken once.
* :class:`Failures` counts failed answers per address: each failure is
  delayed longer, and an address over the limit is refused without a check
  until its window passes (the REST API's ``[auth]`` settings).
* :func:`authenticate` checks one answer against the store.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa

from protocol.handle import (PUBLIC_KEY, SECRET_KEY, ChallengeAnswerRequest, HandleProtocolError, Message,
                             PublicKeyAnswer, challenge_data, verify_secret_key_answer)
from protocol.values import SECRET_TYPES
from protocol.valuetypes import PublicKey, WireError, has_type
from registry.errors import RegistryError
from registry.store import Store

from ..settings import AuthSettings
from .permissions import Identity, scope_of

NONCE_BYTES = 16
MAX_PER_PEER = 32          # pending challenges one address may hold
MAX_FAILURE_SOURCES = 100_000
MAX_DELAY_STEPS = 10       # a failure is delayed at most 10 x auth.failure_delay


@dataclass(frozen=True, slots=True)
class Pending:
    """A challenge sent and not yet answered."""

    request: Message          # the request that was challenged
    nonce: bytes
    digest: bytes             # the request digest sent with the nonce
    peer: str                 # host the request came from; the answer must too
    deadline: float


class ChallengeBook:
    """Pending challenges by session id, bounded in number and in time."""

    def __init__(self, *, timeout: float, max_pending: int, clock: Callable[[], float],
                 max_per_peer: int = MAX_PER_PEER):
        self.timeout = timeout
        self.max_pending = max_pending
        self.max_per_peer = max_per_peer
        self._clock = clock
        self._pending: "OrderedDict[int, Pending]" = OrderedDict()
        self._per_peer: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def _drop(self, session_id: int) -> Pending:
        entry = self._pending.pop(session_id)
        left = self._per_peer[entry.peer] - 1
        if left:
            self._per_peer[entry.peer] = left
        else:
            del self._per_peer[entry.peer]
        return entry

    def expire(self) -> None:
        now = self._clock()
        while self._pending:
            session_id, entry = next(iter(self._pending.items()))
            if entry.deadline > now:
                break
            self._drop(session_id)

    def new_session(self, peer: str) -> int | None:
        """A fresh session id to challenge under, or None when there is no room
        (in all, or for this address)."""
        self.expire()
        if len(self._pending) >= self.max_pending or self._per_peer.get(peer, 0) >= self.max_per_peer:
            return None
        while True:
            session_id = secrets.randbelow(0x7FFFFFFF) + 1     # unguessable, never 0 (no session)
            if session_id not in self._pending:
                return session_id

    def add(self, session_id: int, request: Message, nonce: bytes, digest: bytes, peer: str) -> None:
        self._pending[session_id] = Pending(request, nonce, digest, peer, self._clock() + self.timeout)
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1

    def take(self, session_id: int, peer: str) -> Pending | None:
        """The challenge of ``session_id`` if it is pending for ``peer`` (it is
        then used up); None if unknown, expired or another address's."""
        self.expire()
        entry = self._pending.get(session_id)
        if entry is None or entry.peer != peer:
            return None
        return self._drop(session_id)


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


class Failures:
    """Failed answers per source address: delayed more each time, refused
    outright past ``lockout_failures`` within ``lockout_seconds``."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float]):
        self._settings = settings
        self._clock = clock
        self._seen: "OrderedDict[str, tuple[int, float]]" = OrderedDict()   # source -> (count, first)

    def count(self, source: str) -> int:
        entry = self._seen.get(source)
        if entry is None:
            return 0
        if self._clock() - entry[1] > self._settings.lockout_seconds:
            del self._seen[source]
            return 0
        return entry[0]

    def locked(self, source: str) -> bool:
        return self.count(source) >= self._settings.lockout_failures

    def record(self, source: str) -> float:
        """Count a failure; returns the delay to serve it with (seconds)."""
        count = self.count(source) + 1
        first = self._seen[source][1] if source in self._seen else self._clock()
        self._seen[source] = (count, first)
        if len(self._seen) > MAX_FAILURE_SOURCES:         # bound memory under a spray of sources
            self._seen.popitem(last=False)
        return self.delay(count)

    def delay(self, count: int) -> float:
        return self._settings.failure_delay * min(max(count, 1), MAX_DELAY_STEPS)

    def clear(self, source: str) -> None:
        self._seen.pop(source, None)


# ------------------------------------------------------------------ checking an answer

async def _identity(store: Store, handle: str, index: int) -> Identity | None:
    """The identity with its scope; None when its prefix is not enabled here."""
    admin = await store.get_admin(handle, index)
    scope = admin.scope if admin is not None else scope_of(handle)
    if scope is not None:
        info = await store.get_prefix(scope)
        if info is None or info.state != "enabled":
            return None
    record_handle = admin.handle if admin is not None else handle
    return Identity(record_handle, index, scope)


async def _secret_key_index(store: Store, pending: Pending, answer: ChallengeAnswerRequest) -> int | None:
    """The index of the HS_SECKEY value the answer proves, or None."""
    if answer.key_index:
        indexes = [answer.key_index]
    else:                                             # index 0: any secret key of the handle
        record = await store.get_handle(answer.key_handle)
        indexes = [v.index for v in record.values if v.type in SECRET_TYPES] if record else []
    for index in indexes:
        secret = await store.admin_secret(answer.key_handle, index)
        if secret is None:
            continue
        ok = await asyncio.to_thread(verify_secret_key_answer, secret, pending.nonce, pending.digest,
                                     answer.answer)
        if ok:
            return index
    return None


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


async def _public_key_index(store: Store, pending: Pending, answer: ChallengeAnswerRequest) -> int | None:
    """The index of the HS_PUBKEY value whose private key signed the answer, or None."""
    try:
        signed = PublicKeyAnswer.from_bytes(answer.answer)
    except HandleProtocolError:
        return None
    record = await store.get_handle(answer.key_handle)
    data = challenge_data(pending.nonce, pending.digest)
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


async def authenticate(store: Store, pending: Pending, answer: ChallengeAnswerRequest) -> Identity | None:
    """The identity ``answer`` proves for the challenge ``pending``, or None."""
    try:
        if answer.auth_type == SECRET_KEY:
            index = await _secret_key_index(store, pending, answer)
        elif answer.auth_type == PUBLIC_KEY:
            index = await _public_key_index(store, pending, answer)
        else:
            return None
        return None if index is None else await _identity(store, answer.key_handle, index)
    except RegistryError:          # malformed key handle, unreadable secret: not proven
        return None

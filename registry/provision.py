"""Node and prefix provisioning: the one implementation behind the CLI and REST.

* :func:`init_node` records the node's secondary prefix (``88.118``) and its
  admin identity ``300:0.NA/88.118``;
* :func:`create_prefix` allocates an enterprise prefix under it
  (``88.118.8``) with the admin identity ``300:88.118.8/ADMIN``;
* :func:`add_public_key` gives that admin handle another key;
* :func:`rotate_prefix_secret` and :func:`rotate_node_secret` replace an
  admin's secret (the latter is how a lost node admin secret is recovered);
* :func:`delegate_prefix` and :func:`undelegate_prefix` point an enterprise
  prefix at the enterprise's own Handle server, and take it back.

**Delegation.** A delegated prefix has a prefix record ``0.NA/<prefix>``
holding where its identifiers are served: an HS_SITE value at index 1 (a
site: servers, addresses, ports) or an HS_SERV value at index 2 (the handle
of a service whose record lists the sites), and an HS_ADMIN at 100 naming
the node admin, who alone changes it. An enterprise prefix that is not
delegated has no such record: the node serves it. Identifiers already
registered here stay here; the record says where the others are.

An admin identity is an admin handle whose index 100 is an HS_ADMIN value
referring to ``300:<handle>`` with every permission, and whose index 300 is
either

* the HS_SECKEY value holding the secret (readable and writable by admins
  only; the store encrypts it under the node key), plus an
  :class:`AdminIdentity` row with the slow scrypt hash that REST Basic
  authentication checks; a secret the caller does not supply is generated
  and returned exactly once; or
* an HS_PUBKEY value (a *key identity*, as Handle.Net admins usually are):
  the holder of the private key proves it by signing Handle challenges. It
  has no secret, no row and no hash, so REST Basic cannot prove it.

Further keys (:func:`add_public_key`) go at free indexes from 301, each with
an HS_ADMIN value (from index 101) naming it, so each key administers the
prefix as ``<index>:<prefix>/ADMIN``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

from protocol.identifier import InvalidHandle, handle_key, parse_prefix
from protocol.values import ADMIN_ONLY_PERMS, MAX_INDEX, HandleValue
from protocol.valuetypes import AdminRef

from .errors import HandleNotFound, InvalidHandleError, InvalidValue, PrefixNotFound, RecordChanged, ValueExists
from .keys import public_key_value
from .model import AdminIdentity, PrefixInfo
from .secrets import generate_secret, hash_password
from .store import Store

ADMIN_INDEX = 300          # index of the HS_SECKEY (or HS_PUBKEY) value: the identity is 300:<handle>
HS_ADMIN_INDEX = 100
FIRST_EXTRA_KEY_INDEX = 301      # where add_public_key puts keys by default (the next free index)
FIRST_EXTRA_ADMIN_INDEX = 101    # and the HS_ADMIN values naming them
MIN_PASSWORD_CHARS = 12
# Unified social credit code (GB 32100-2015): 18 characters, no I, O, S, V, Z.
_CREDIT_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")


def node_admin_handle(secondary_prefix: str) -> str:
    return f"0.NA/{secondary_prefix}"


def prefix_admin_handle(prefix: str) -> str:
    return f"{prefix}/ADMIN"


def _secret(password: str | None) -> tuple[str, str | None]:
    """``(secret to store, secret to hand back once)``."""
    if password is None:
        generated = generate_secret()
        return generated, generated
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise InvalidValue(f"the admin password must have at least {MIN_PASSWORD_CHARS} characters")
    if password != password.strip() or any(ord(c) < 0x20 for c in password):
        raise InvalidValue("the admin password must not start or end with spaces or hold control characters")
    return password, None


def _secret_value(secret: str) -> HandleValue:
    return HandleValue(ADMIN_INDEX, "HS_SECKEY", secret.encode("utf-8"), permissions=int(ADMIN_ONLY_PERMS))


async def _identity(handle: str, scope: str | None, secret: str) -> AdminIdentity:
    """The identity row; scrypt runs on a worker thread, off a serving event loop."""
    return AdminIdentity(handle, ADMIN_INDEX, scope, await asyncio.to_thread(hash_password, secret))


def _admin_ref(index: int, handle: str, key_index: int) -> HandleValue:
    """HS_ADMIN at ``index`` naming ``key_index:handle`` with every permission."""
    return HandleValue(index, "HS_ADMIN", AdminRef(handle, key_index).encode())


async def _admin(handle: str, scope: str | None, secret: str) -> tuple[AdminIdentity, list[HandleValue]]:
    """The identity row and the values of a self-administered admin handle."""
    return await _identity(handle, scope, secret), [_admin_ref(HS_ADMIN_INDEX, handle, ADMIN_INDEX),
                                                    _secret_value(secret)]


def _prefix(text: str) -> str:
    try:
        return parse_prefix(text)
    except InvalidHandle as exc:
        raise InvalidHandleError(str(exc)) from None


async def init_node(store: Store, secondary_prefix: str, password: str | None, *,
                    actor: str = "init") -> str | None:
    """Record the node's prefix and create ``300:0.NA/<prefix>``.

    Returns the generated secret when ``password`` is None, else None.
    HandleExists if the node was already initialised.
    """
    prefix = _prefix(secondary_prefix)
    secret, generated = _secret(password)
    identity, values = await _admin(node_admin_handle(prefix), None, secret)
    await store.initialise(prefix, identity, values, actor=actor)
    return generated


def is_under(prefix: str, parent: str) -> bool:
    """Whether ``prefix`` is strictly below ``parent`` (``88.118.8`` under ``88.118``)."""
    return handle_key(prefix).startswith(handle_key(parent) + ".")


async def create_prefix(store: Store, prefix: str, owner: str, credit_code: str = "", contact: str = "",
                        password: str | None = None, *, public_key: str | bytes | None = None,
                        actor: str) -> str | None:
    """Allocate an enterprise prefix and its admin ``300:<prefix>/ADMIN``.

    The prefix must be directly or indirectly under the node's secondary
    prefix. With ``public_key`` (PEM) the admin is a key identity: its
    HS_PUBKEY at 300, no secret. Otherwise returns the generated secret when
    ``password`` is None.
    """
    prefix = _prefix(prefix)
    node_prefix = await store.secondary_prefix()
    if not is_under(prefix, node_prefix):
        raise InvalidHandleError(f"prefix {prefix} is not under this node's prefix {node_prefix}")
    owner = owner.strip() if isinstance(owner, str) else ""
    if not owner:
        raise InvalidValue("the prefix owner is required")
    credit_code = credit_code.strip().upper()
    if credit_code and not _CREDIT_CODE.fullmatch(credit_code):
        raise InvalidValue("the credit code must be an 18-character unified social credit code")
    info = PrefixInfo(prefix, owner, credit_code, contact.strip())     # the store stamps ``created``
    handle = prefix_admin_handle(prefix)
    if public_key is not None:
        if password is not None:
            raise InvalidValue("give the prefix admin a password or a public key, not both")
        values = [_admin_ref(HS_ADMIN_INDEX, handle, ADMIN_INDEX), public_key_value(public_key, ADMIN_INDEX)]
        await store.create_prefix(info, handle, values, actor=actor)
        return None
    secret, generated = _secret(password)
    identity, values = await _admin(handle, prefix, secret)
    await store.create_prefix(info, identity, values, actor=actor)
    return generated


def _free_index(used: set[int], start: int) -> int:
    index = start
    while index in used:
        index += 1
    if index > MAX_INDEX:
        raise InvalidValue("no free value index left")
    return index


async def add_public_key(store: Store, prefix: str, public_key: str | bytes, index: int | None = None, *,
                         actor: str) -> tuple[int, int]:
    """Add the HS_PUBKEY ``public_key`` (PEM) to ``<prefix>/ADMIN`` at ``index``
    (None: the next free index from 301) and an HS_ADMIN value (the next free
    index from 101) naming ``<index>:<prefix>/ADMIN`` with every permission.

    Returns ``(key index, HS_ADMIN index)``. ValueExists if ``index`` is in
    use; PrefixNotFound if the prefix is not allocated here, PrefixDisabled
    while it is disabled. The write is one conditional replace of the admin
    handle (audited ``handle.add``): a concurrent change makes it RecordChanged.
    """
    prefix = _prefix(prefix)
    if index is not None and (type(index) is not int or not 0 < index <= MAX_INDEX):
        raise InvalidValue(f"the key index must be an integer in 1..{MAX_INDEX}")
    key = public_key_value(public_key, index or FIRST_EXTRA_KEY_INDEX)    # a bad key: refused before any read
    info = await store.get_prefix(prefix)
    if info is None:
        raise PrefixNotFound(f"prefix {prefix} is not allocated on this node")
    handle = prefix_admin_handle(info.prefix)
    current = await store.get_versioned(handle)
    if current.record is None:
        raise HandleNotFound(f"{handle}, the admin handle of prefix {info.prefix}, does not exist")
    held = {v.index: v for v in current.record.values}
    if index is None:
        index = _free_index(set(held), FIRST_EXTRA_KEY_INDEX)
    elif index in held:
        raise ValueExists(f"index {index} of {current.record.handle} is already in use "
                          f"(a {held[index].type} value); choose another index")
    admin_index = _free_index({*held, index}, FIRST_EXTRA_ADMIN_INDEX)
    values = [*current.record.values, replace(key, index=index), _admin_ref(admin_index, current.record.handle, index)]
    await store.put_handle(handle, values, mode="replace", actor=actor, expect=current.version,
                           operation="handle.add")
    return index, admin_index


async def _rotate(store: Store, handle: str, scope: str | None, password: str | None, actor: str) -> str | None:
    secret, generated = _secret(password)
    identity = await _identity(handle, scope, secret)
    await store.set_admin_password(identity, _secret_value(secret), actor=actor)
    return generated


async def rotate_prefix_secret(store: Store, prefix: str, password: str | None = None, *,
                               actor: str) -> str | None:
    """Replace the secret of ``300:<prefix>/ADMIN`` (hash and HS_SECKEY together).

    Returns the generated secret when ``password`` is None. ValueExists for a
    key identity (it has no secret).
    """
    prefix = _prefix(prefix)
    info = await store.get_prefix(prefix)
    if info is None:
        raise PrefixNotFound(f"prefix {prefix} is not allocated on this node")
    return await _rotate(store, prefix_admin_handle(info.prefix), info.prefix, password, actor)


async def rotate_node_secret(store: Store, password: str | None = None, *, actor: str) -> str | None:
    """Replace the secret of the node admin ``300:0.NA/<secondary prefix>``:
    the old one is not needed, so this recovers a lost one.

    Returns the generated secret when ``password`` is None; NotInitialised
    if the store holds no node.
    """
    return await _rotate(store, node_admin_handle(await store.secondary_prefix()), None, password, actor)


SITE_INDEX = 1             # HS_SITE of a delegated prefix's record
SERV_INDEX = 2             # or HS_SERV
WHERE = ((SITE_INDEX, "HS_SITE"), (SERV_INDEX, "HS_SERV"))
WHERE_TYPES = tuple(t for _, t in WHERE)     # the values of a prefix record that say where its prefix is served


def prefix_record_handle(prefix: str) -> str:
    return f"0.NA/{prefix}"


def prefix_record_values(where: HandleValue, secondary_prefix: str,
                         admin: tuple[int, str] | None = None) -> list[HandleValue]:
    """A prefix record: ``where`` (HS_SITE at 1 or HS_SERV at 2) and an
    HS_ADMIN at 100 naming the node admin, who alone changes it (or
    ``admin``, ``(index, handle)``: the identity a record published to the
    top-level node is kept by there)."""
    index, handle = admin if admin is not None else (ADMIN_INDEX, node_admin_handle(secondary_prefix))
    return [where, _admin_ref(HS_ADMIN_INDEX, handle, index)]


async def delegate_prefix(store: Store, prefix: str, where: HandleValue, *, actor: str) -> None:
    """Point ``prefix`` (allocated here) at ``where``: an HS_SITE value
    (index 1) or an HS_SERV value (index 2); replaces an earlier delegation."""
    prefix = _prefix(prefix)
    if await store.get_prefix(prefix) is None:
        raise HandleNotFound(f"prefix {prefix} is not allocated on this node")
    if (where.index, where.type) not in WHERE:
        raise InvalidValue("a delegation is an HS_SITE value at index 1 or an HS_SERV value at index 2")
    await store.put_handle(prefix_record_handle(prefix), prefix_record_values(where, await store.secondary_prefix()),
                           mode="replace", actor=actor)


async def undelegate_prefix(store: Store, prefix: str, *, actor: str) -> None:
    """Serve ``prefix`` here again: its prefix record goes (HandleNotFound when it was not delegated)."""
    prefix = _prefix(prefix)
    try:
        await store.delete_handle(prefix_record_handle(prefix), actor=actor)
    except HandleNotFound:
        raise HandleNotFound(f"prefix {prefix} is not delegated") from None


async def delegation_of(store: Store, prefix: str) -> HandleValue | None:
    """The HS_SITE or HS_SERV value ``prefix`` is delegated to, or None."""
    record = await store.get_handle(prefix_record_handle(_prefix(prefix)))
    if record is None:
        return None
    return next((v for v in record.values if (v.index, v.type) in WHERE), None)


async def advertise_site(store: Store, site: bytes, *, actor: str = "node") -> bool:
    """Put this node's HS_SITE (``site``, encoded) at index 1 of its own
    prefix record ``0.NA/<its prefix>`` (the node admin's record), as a
    Handle.Net prefix record holds its site; written only when it differs
    (a node that starts again on the same ports writes nothing). Whether it wrote."""
    handle = node_admin_handle(await store.secondary_prefix())
    for _ in range(4):                       # another process of the node may be doing the same
        current = await store.get_versioned(handle)
        if current.record is None:
            return False
        values = list(current.record.values)
        if any(v.index == SITE_INDEX and v.type == "HS_SITE" and v.data == site for v in values):
            return False
        values = [v for v in values if v.index != SITE_INDEX] + [HandleValue(SITE_INDEX, "HS_SITE", site)]
        try:
            await store.put_handle(handle, values, mode="replace", actor=actor, expect=current.version)
        except RecordChanged:
            continue
        return True
    return False
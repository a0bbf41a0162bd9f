"""Node and prefix provisioning: the one implementation behind the CLI and REST.

* :func:`init_node` records the node's secondary prefix (``88.118``) and its
  admin identity ``300:0.NA/88.118``;
* :func:`create_prefix` allocates an enterprise prefix under it
  (``88.118.8``) with the admin identity ``300:88.118.8/ADMIN``;
* :func:`rotate_prefix_secret` replaces that admin's secret.

An admin identity is an admin handle whose index 100 is an HS_ADMIN value
referring to itself with every permission, and whose index 300 is the
HS_SECKEY value holding the secret (readable and writable by admins only;
the store encrypts it under the node key), plus an :class:`AdminIdentity`
row with the slow scrypt hash that REST Basic authentication checks.
A secret the caller does not supply is generated and returned exactly once.
"""

from __future__ import annotations

import asyncio
import re

from protocol.identifier import InvalidHandle, handle_key, parse_prefix
from protocol.values import ADMIN_ONLY_PERMS, HandleValue
from protocol.valuetypes import AdminRef

from .errors import InvalidHandleError, InvalidValue, PrefixNotFound
from .model import AdminIdentity, PrefixInfo
from .secrets import generate_secret, hash_password
from .store import Store

ADMIN_INDEX = 300          # index of the HS_SECKEY value: the identity is 300:<handle>
HS_ADMIN_INDEX = 100
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


async def _admin(handle: str, scope: str | None, secret: str) -> tuple[AdminIdentity, list[HandleValue]]:
    """The identity row and the values of a self-administered admin handle."""
    admin_ref = HandleValue(HS_ADMIN_INDEX, "HS_ADMIN", AdminRef(handle, ADMIN_INDEX).encode())
    return await _identity(handle, scope, secret), [admin_ref, _secret_value(secret)]


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
                        password: str | None = None, *, actor: str) -> str | None:
    """Allocate an enterprise prefix and its admin ``300:<prefix>/ADMIN``.

    The prefix must be directly or indirectly under the node's secondary
    prefix. Returns the generated secret when ``password`` is None.
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
    secret, generated = _secret(password)
    identity, values = await _admin(prefix_admin_handle(prefix), prefix, secret)
    info = PrefixInfo(prefix, owner, credit_code, contact.strip())     # the store stamps ``created``
    await store.create_prefix(info, identity, values, actor=actor)
    return generated


async def rotate_prefix_secret(store: Store, prefix: str, password: str | None = None, *,
                               actor: str) -> str | None:
    """Replace the secret of ``300:<prefix>/ADMIN`` (hash and HS_SECKEY together).

    Returns the generated secret when ``password`` is None.
    """
    prefix = _prefix(prefix)
    info = await store.get_prefix(prefix)
    if info is None:
        raise PrefixNotFound(f"prefix {prefix} is not allocated on this node")
    secret, generated = _secret(password)
    identity = await _identity(prefix_admin_handle(info.prefix), info.prefix, secret)
    await store.set_admin_password(identity, _secret_value(secret), actor=actor)
    return generated

"""Registry errors: one root, each class carrying its Handle response code."""

from __future__ import annotations

from protocol.codes import RC


class RegistryError(Exception):
    code: RC = RC.ERROR


class HandleNotFound(RegistryError):
    code = RC.HANDLE_NOT_FOUND


class HandleExists(RegistryError):
    code = RC.HANDLE_ALREADY_EXISTS


class InvalidHandleError(RegistryError):
    code = RC.INVALID_HANDLE


class ValuesNotFound(RegistryError):
    code = RC.VALUES_NOT_FOUND


class ValueExists(RegistryError):
    code = RC.VALUE_ALREADY_EXISTS


class InvalidValue(RegistryError):
    code = RC.INVALID_VALUE


class PrefixNotFound(RegistryError):
    """The prefix is not allocated on this node (Handle RC 301)."""
    code = RC.SERVER_NOT_RESPONSIBLE


class PrefixExists(RegistryError):
    code = RC.HANDLE_ALREADY_EXISTS


class PrefixDisabled(RegistryError):
    code = RC.INSUFFICIENT_PERMISSIONS


class NotInitialised(RegistryError):
    """The home directory holds no node yet (run ``idnode init``)."""


class StoreUnavailable(RegistryError):
    """The backend cannot answer now (busy, locked, disk or connection trouble)."""
    code = RC.SERVER_BUSY


class RecordChanged(RegistryError):
    """A conditional write (``expect=``) found the record changed since it was read."""
    code = RC.SERVER_BUSY


class NodeKeyError(RegistryError):
    """The node key is malformed, or cannot open a stored secret (wrong key or damaged data)."""


class CorruptRecord(RegistryError):
    """A stored record holds something this node did not write (RC 2)."""

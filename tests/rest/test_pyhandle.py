"""pyhandle 1.5.0 (the EUDAT/PIDs client) against a real in-process node."""

from __future__ import annotations

import asyncio

import pytest
from pyhandle.client.resthandleclient import RESTHandleClient
from pyhandle.handleexceptions import HandleAuthenticationError, HandleNotFoundException

from tests.conftest import ENT_PASSWORD


async def in_thread(fn, *args, **kwargs):
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_pyhandle_write_then_read(live):
    writer = await in_thread(RESTHandleClient.instantiate_with_username_and_password,
                             live.url, "300:88.118.8/ADMIN", ENT_PASSWORD, HTTPS_verify=False)
    reader = await in_thread(RESTHandleClient.instantiate_for_read_access, live.url, HTTPS_verify=False)
    handle = "88.118.8/PO-2026-000123"

    assert await in_thread(writer.register_handle, handle, "https://acme.example/po/123",
                           checksum="abc123", BATCH="B-7") == handle
    record = await in_thread(reader.retrieve_handle_record_json, handle)
    assert record["handle"] == handle
    types = {v["type"]: v for v in record["values"]}
    assert types["URL"]["data"]["value"] == "https://acme.example/po/123"
    assert types["HS_ADMIN"]["data"]["format"] == "admin"
    assert await in_thread(reader.get_value_from_handle, handle, "BATCH") == "B-7"

    await in_thread(writer.modify_handle_value, handle, BATCH="B-8", COLOR="red")
    assert await in_thread(reader.get_value_from_handle, handle, "BATCH") == "B-8"
    assert await in_thread(reader.get_value_from_handle, handle, "COLOR") == "red"
    assert await in_thread(reader.get_value_from_handle, handle, "URL") == "https://acme.example/po/123"

    await in_thread(writer.delete_handle_value, handle, "COLOR")
    assert await in_thread(reader.get_value_from_handle, handle, "COLOR") is None
    assert await in_thread(reader.get_value_from_handle, handle, "CHECKSUM") == "abc123"

    assert await in_thread(writer.delete_handle, handle) == handle
    assert await in_thread(reader.retrieve_handle_record_json, handle) is None
    with pytest.raises(HandleNotFoundException):
        await in_thread(writer.delete_handle, handle)

    audit = await live.store.audit()
    assert [e.operation for e in audit if e.handle == handle][:1] and all(
        e.actor == "300:88.118.8/ADMIN" for e in audit if e.handle == handle)


async def test_pyhandle_wrong_password_is_refused(live):
    writer = await in_thread(RESTHandleClient.instantiate_with_username_and_password,
                             live.url, "300:88.118.8/ADMIN", "not-the-password", HTTPS_verify=False)
    with pytest.raises(HandleAuthenticationError):
        await in_thread(writer.register_handle, "88.118.8/nope", "https://acme.example/")
    reader = await in_thread(RESTHandleClient.instantiate_for_read_access, live.url, HTTPS_verify=False)
    assert await in_thread(reader.retrieve_handle_record_json, "88.118.8/nope") is None

"""`idnode resolve HANDLE --hs HOST:PORT [--udp]` against a live node."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from click.testing import CliRunner

from protocol.values import HandleValue
from resolver.cli import cli

from .conftest import PRODUCT, hs_node

CLEAN_ENV = {"IDNODE_HOME": None, "IDNODE_CONFIG": None}


async def idnode(*args: str):
    """The CLI in a thread: it runs its own event loop, the node runs in this one."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=CLEAN_ENV, catch_exceptions=False)


@pytest.mark.parametrize("udp", [False, True])
async def test_resolve_over_the_handle_protocol(tmp_path, udp):
    async with hs_node(tmp_path, clock=time.time) as hs:          # the CLI checks replies against the real clock
        server = f"127.0.0.1:{hs.port}"
        extra = ["--udp"] if udp else []
        result = await idnode("resolve", PRODUCT, "--hs", server, *extra)
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == ["1 URL https://acme.example/p/123", "3 DESC 产品 123",
                                              "100 HS_ADMIN admin 300:88.118.8/ADMIN perms=111111111111"]
        doc = orjson.loads((await idnode("resolve", PRODUCT, "--hs", server, "--json", *extra)).stdout)
        assert doc["handle"] == PRODUCT and [v["index"] for v in doc["values"]] == [1, 3, 100]
        missing = await idnode("resolve", "88.118.8/absent", "--hs", server, *extra)
        assert missing.exit_code == 1 and "88.118.8/absent not found" in missing.stderr
    assert (await idnode("resolve", PRODUCT, "--udp")).exit_code == 2          # --udp needs --hs


async def test_resolve_over_udp_asks_again_over_tcp_when_refused(tmp_path):
    """An answer past handle.max_udp_reply_bytes is refused over UDP (RC 2); the CLI asks over TCP."""
    async with hs_node(tmp_path, clock=time.time, **{"handle.max_udp_reply_bytes": 1024}) as hs:
        big = [HandleValue(i, "DESC", b"d" * 600) for i in (1, 2, 3)]
        await hs.store.put_handle("88.118.8/wide", big, mode="create", actor="test")
        result = await idnode("resolve", "88.118.8/wide", "--hs", f"127.0.0.1:{hs.port}", "--udp")
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["1", "2", "3"]


async def test_resolve_against_a_closed_port(tmp_path):
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await idnode("resolve", PRODUCT, "--hs", f"127.0.0.1:{port}")
    assert result.exit_code == 1 and result.stderr.startswith("idnode: error: 127.0.0.1:")
    assert "Traceback" not in result.stderr

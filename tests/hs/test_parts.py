"""The service's parts on their own: pending challenges, the site record,
the [handle] settings."""

from __future__ import annotations

import pytest

from protocol.handle import DeleteHandleRequest, make_request
from resolver.hs.auth import ChallengeBook
from resolver.hs.client import parse_server
from resolver.hs.site import advertised_address, site_info
from resolver.settings import SettingsError, load_settings

from .conftest import NOW, Clock

REQUEST = make_request(DeleteHandleRequest("88.118.8/x"), request_id=1, now=NOW)


def test_challenge_book_bounds_per_source_per_pool_and_in_time():
    clock = Clock()
    book = ChallengeBook(timeout=60, max_pending=8, clock=clock, per_source=3)   # pools: 2 over UDP, 6 others

    def add(peer: str, udp: bool = False) -> int:
        sid = book.new_session()
        book.add(sid, REQUEST, b"n" * 16, b"d" * 32, peer, udp=udp)
        return sid

    a = [add("10.0.0.1"), add("10.0.0.2"), add("10.0.0.3")]
    assert book.held_by("10.0.0.9") == 3                 # one /24: one source
    a.append(add("10.0.0.4"))                            # its fourth makes room by forgetting its first
    assert book.held_by("10.0.0.1") == 3 and book.take(a[0], "10.0.0.1") is None
    b = [add("10.0.1.1"), add("10.0.2.1"), add("10.0.3.1")]
    assert len(book) == 6                                # the TCP/HTTP pool is full
    newcomer = add("192.0.2.7")                          # ... and still has room for a newcomer
    assert book.take(a[1], "10.0.0.2") is None           # (the pool's oldest went)
    u = [add(f"203.0.{i}.1", udp=True) for i in range(5)]
    assert len(book) == 8 and book.held_by("203.0.4.1") == 1   # UDP challenges never crowd out the others
    assert book.take(u[0], "203.0.0.1") is None and book.take(u[4], "203.0.4.1") is not None
    assert book.take(newcomer, "192.0.2.8") is None      # another address's challenge
    assert book.take(newcomer, "192.0.2.7").nonce == b"n" * 16
    assert book.take(newcomer, "192.0.2.7") is None      # used once
    clock.advance(60)
    assert book.take(b[0], "10.0.1.1") is None and len(book) == 0
    assert book.held_by("10.0.0.1") == 0


def test_site_record_from_settings():
    settings = load_settings(env={}, overrides={"handle.address": "192.0.2.7", "handle.site_serial": 9})
    site = site_info(settings, tcp_port=2641, udp_port=2641, http_port=8000)
    assert site.servers[0].address_text == "192.0.2.7" and site.serial == 9
    v6 = load_settings(env={}, overrides={"handle.bind": "::"})
    assert advertised_address(v6) == bytes(12) + bytes([127, 0, 0, 1])      # a wildcard bind: loopback
    with pytest.raises(SettingsError):
        advertised_address(load_settings(env={}, overrides={"handle.address": "node.example"}))
    with pytest.raises(SettingsError):
        site_info(load_settings(env={}, overrides={"handle.site_serial": 70000}), tcp_port=1, udp_port=1, http_port=1)


def test_handle_settings_from_file_and_environment(tmp_path):
    conf = tmp_path / "idnode.toml"
    conf.write_text("[handle]\nport = 12641\nidle_timeout = 2.5\nmax_message_bytes = 65536\n")
    settings = load_settings(conf, env={"IDNODE_HANDLE_SITE_SERIAL": "4"})
    h = settings.handle
    assert (h.port, h.idle_timeout, h.max_message_bytes, h.site_serial, h.bind) == (12641, 2.5, 65536, 4, "")
    defaults = load_settings(env={}).handle
    assert (defaults.port, defaults.idle_timeout, defaults.max_message_bytes) == (2641, 5.0, 262144)


def test_parse_server():
    assert parse_server("127.0.0.1:2641") == ("127.0.0.1", 2641)
    assert parse_server("[::1]:12") == ("::1", 12)
    assert parse_server("node.example") == ("node.example", 2641)
    with pytest.raises(ValueError):
        parse_server("host:0")

"""The service's parts on their own: pending challenges, the site record,
the [handle] settings."""

from __future__ import annotations

import os
import time

import pytest

from protocol.handle import DeleteHandleRequest, make_request
from resolver.hs.auth import ChallengeBook
from resolver.hs.authdir import AuthDir
from resolver.hs.sessions import WINDOW, Session, SessionBook
from resolver.hs.client import parse_server
from resolver.hs.site import advertised_address, site_info
from resolver.settings import SettingsError, load_settings

from .conftest import NOW, Clock

REQUEST = make_request(DeleteHandleRequest("88.118.8/x"), request_id=1, now=NOW)


def test_challenge_book_bounds_per_source_per_pool_and_in_time(tmp_path):
    clock = Clock()
    store = AuthDir(tmp_path)
    book = ChallengeBook(store, timeout=60, max_pending=8, clock=clock, per_source=3)   # pools: 2 UDP, 6 others

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
    assert not any((tmp_path / "challenge").iterdir())     # nothing left behind in the shared directory


def test_a_challenge_sent_by_one_worker_is_taken_once_by_another(tmp_path):
    """Handle.Net opens a new connection for each message: the answer reaches
    whichever worker the kernel picks. Both books share one directory."""
    clock = Clock()
    sender = ChallengeBook(AuthDir(tmp_path), timeout=60, max_pending=8, clock=clock)
    other = ChallengeBook(AuthDir(tmp_path), timeout=60, max_pending=8, clock=clock)
    sid = sender.new_session()
    sender.add(sid, REQUEST, b"n" * 16, b"d" * 32, "192.0.2.7")
    assert other.take(sid, "192.0.2.8") is None                  # not from another address
    taken = other.take(sid, "192.0.2.7")
    assert taken.request.body == REQUEST.body and taken.nonce == b"n" * 16
    assert sender.take(sid, "192.0.2.7") is None and other.take(sid, "192.0.2.7") is None   # once
    clock.advance(61)
    sender.expire()
    assert len(sender) == 0


def test_session_counters_refuse_replays_within_and_behind_the_window():
    s = Session(1, "192.0.2.7", NOW + 60, 3, (2, 10), b"k" * 32)
    for counter in (1, 2, 5, 3):
        s = s.counted(counter)
        assert s is not None
    assert s.counted(5) is None and s.counted(3) is None and s.counted(0) is None
    s = s.counted(5 + WINDOW)
    assert s is not None and s.counted(5) is None and s.counted(4) is None     # 4 fell behind the window
    assert s.counted(6) is not None                                           # 6 did not, and was never seen


def test_session_book_bounds_and_shares_sessions(tmp_path):
    clock = Clock()
    book = SessionBook(AuthDir(tmp_path), max_sessions=3, per_source=2, max_timeout=60, clock=clock)
    other = SessionBook(AuthDir(tmp_path), max_sessions=3, per_source=2, max_timeout=60, clock=clock)
    a = [book.open("10.0.0.1", timeout=3600, cipher=3, version=(2, 10), key=b"k" * 32) for _ in range(3)]
    assert book.get(a[0].id) is None and other.get(a[2].id) == a[2]          # the source's oldest made room
    assert a[2].deadline == NOW + 60                                         # capped at the book's timeout
    b = book.open("10.0.9.1", timeout=10, cipher=3, version=(2, 10), key=b"k" * 32)
    assert len(book) == 3 and other.get(b.id).deadline == NOW + 10
    assert other.update(b.id, lambda s: s.counted(1)).top == 1 and book.get(b.id).top == 1
    book.open("10.0.8.1", timeout=10, cipher=3, version=(2, 10), key=b"k" * 32)    # full: the oldest goes
    assert book.get(a[1].id) is None and len(book) == 3
    clock.advance(11)
    assert other.get(b.id) is None                                           # expired, whoever reads it
    other.close(a[2].id)
    assert book.get(a[2].id) is None


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


def test_a_sweep_clears_what_a_dead_worker_left(tmp_path):
    store = AuthDir(tmp_path)
    for key in (1, 2, 3):
        store.put("session", key, {"id": key})
    old = time.time() - 7200
    os.utime(tmp_path / "session" / "1", (old, old))                # written two hours ago, never since
    assert store.sweep("session", 3600) == 1
    assert not store.exists("session", 1) and store.exists("session", 2) and store.exists("session", 3)

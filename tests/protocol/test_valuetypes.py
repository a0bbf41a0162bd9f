"""Typed value data codecs: byte vectors, round trips and decoder fuzzing."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.values import Reference
from protocol.valuetypes import (
    ALL_ADMIN_PERMS, AdminPerm, AdminRef, Interface, Opaque, PublicKey, ServerInfo, SiteInfo, Text,
    VList, WireError, decode_data, has_type, kind_of,
)


def s(text: str) -> bytes:
    """A protocol string: u32 length + UTF-8."""
    raw = text.encode()
    return struct.pack(">I", len(raw)) + raw


def b(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


# ---------------------------------------------------------------- HS_ADMIN

def test_admin_bytes_match_pyhandle_database_layout():
    # pyhandle's DBHandleClient.add_admin_entry writes HS_ADMIN as hex:
    # '0' + hex(perms) + '0000000f' + hex(handle) + 8-digit hex(index).
    perm = "011111110011"
    handle = "0.NA/20.500.123"
    expected = "0" + hex(int(perm, 2))[2:] + "0000000f" + handle.encode().hex() + f"{200:08x}"
    ref = AdminRef(handle, 200, int(perm, 2))
    assert ref.encode().hex() == expected
    assert AdminRef.decode(bytes.fromhex(expected)) == ref


@pytest.mark.parametrize(("perm", "bit", "allowed"), [
    (AdminPerm.ADD_HANDLE, 0, True),
    (AdminPerm.DELETE_HANDLE, 1, True),
    (AdminPerm.ADD_DERIVED_PREFIX, 2, False),
    (AdminPerm.DELETE_DERIVED_PREFIX, 3, False),
    (AdminPerm.MODIFY_VALUE, 4, True),
    (AdminPerm.REMOVE_VALUE, 5, True),
    (AdminPerm.ADD_VALUE, 6, True),
    (AdminPerm.MODIFY_ADMIN, 7, True),
    (AdminPerm.REMOVE_ADMIN, 8, True),
    (AdminPerm.ADD_ADMIN, 9, True),
    (AdminPerm.READ_VALUE, 10, True),
    (AdminPerm.LIST_HANDLES, 11, False),
])
def test_admin_permission_bits_follow_handle_net(perm, bit, allowed):
    # "011111110011" is hdl-admintool's default; the string's i-th character
    # from the right is AdminRecord.perms[i], which is wire bit i.
    ref = AdminRef.decode(AdminRef("0.NA/88", 200, int("011111110011", 2)).encode())
    assert perm == 1 << bit
    assert ref.allows(perm) is allowed


def test_naming_auth_names_are_aliases_of_derived_prefix():
    assert AdminPerm.ADD_NAMING_AUTH is AdminPerm.ADD_DERIVED_PREFIX
    assert AdminPerm.DELETE_NAMING_AUTH is AdminPerm.DELETE_DERIVED_PREFIX
    assert ALL_ADMIN_PERMS == sum(1 << i for i in range(12))


def test_admin_legacy_length_is_kept():
    modern = struct.pack(">H", 0x0FFF) + s("0.NA/88") + struct.pack(">I", 300)
    legacy = modern + b"\x00\x00"
    ref = AdminRef.decode(legacy)
    assert (ref.handle, ref.index, ref.permissions, ref.legacy_length) == ("0.NA/88", 300, 0x0FFF, True)
    assert ref.encode() == legacy
    assert AdminRef.decode(modern).legacy_length is False


@pytest.mark.parametrize("data", [
    b"",
    b"\x0f",
    struct.pack(">H", 1) + s("0.NA/88"),                                # no index
    struct.pack(">H", 1) + s("0.NA/88") + struct.pack(">I", 1) + b"\x01\x02",  # nonzero "legacy" tail
    struct.pack(">H", 1) + s("0.NA/88") + struct.pack(">I", 1) + b"\x00",      # one stray byte
    struct.pack(">H", 1) + struct.pack(">I", 99) + b"0.NA",                    # lying length
    struct.pack(">H", 1) + b(b"\xff\xfe") + struct.pack(">I", 1),              # not UTF-8
])
def test_admin_malformed_raises_wire_error(data):
    with pytest.raises(WireError):
        AdminRef.decode(data)


# ---------------------------------------------------------------- HS_VLIST

def test_vlist_bytes_and_round_trip():
    raw = struct.pack(">I", 2) + s("0.NA/88") + struct.pack(">I", 200) + s("88/admins") + struct.pack(">I", 300)
    vlist = VList.decode(raw)
    assert vlist.refs == (Reference("0.NA/88", 200), Reference("88/admins", 300))
    assert vlist.encode() == raw
    assert VList().encode() == b"\x00\x00\x00\x00"


def test_vlist_count_larger_than_data_is_refused():
    with pytest.raises(WireError):
        VList.decode(struct.pack(">I", 1_000_000) + s("x/y") + struct.pack(">I", 1))


# ---------------------------------------------------------------- HS_SITE

def handmade_site() -> bytes:
    """An HS_SITE laid out field by field from HANDLE-WIRE.md, not by our encoder."""
    key = s("DSA_PUB_KEY") + b"\x00\x00" + b(b"\x01") + b(b"\x02") + b(b"\x03") + b(b"\x04")
    server = (struct.pack(">I", 7) + bytes(10) + b"\xff\xff" + bytes([192, 0, 2, 10]) + b(key)
              + struct.pack(">I", 2) + struct.pack(">BBI", 3, 1, 2641) + struct.pack(">BBI", 2, 0, 2641))
    return (struct.pack(">HBBHBB", 1, 2, 10, 42, 0x80, 0) + s("")
            + struct.pack(">I", 2) + s("desc") + s("secondary node") + s("domain") + s("idnode.example")
            + struct.pack(">I", 1) + server)


def test_site_decodes_every_field():
    site = SiteInfo.decode(handmade_site())
    assert (site.data_version, site.major, site.minor, site.serial) == (1, 2, 10, 42)
    assert site.is_primary and not site.multi_primary
    assert (site.hash_option, site.hash_filter) == (SiteInfo.HASH_BY_PREFIX, "")
    assert site.attribute("desc") == "secondary node"
    assert site.attribute("domain") == "idnode.example"
    assert site.attribute("missing") is None
    (server,) = site.servers
    assert server.server_id == 7
    assert server.address_text == "::ffff:c000:20a"
    assert PublicKey.decode(server.public_key).numbers() == {"q": 1, "p": 2, "g": 3, "y": 4}
    tcp, udp = server.interfaces
    assert (tcp.admin, tcp.query, tcp.transport, tcp.port) == (True, True, Interface.TCP, 2641)
    assert (udp.admin, udp.query, udp.transport) == (False, True, Interface.UDP)
    assert site.encode() == handmade_site()


def test_site_trailing_and_truncated_bytes_are_refused():
    raw = handmade_site()
    with pytest.raises(WireError):
        SiteInfo.decode(raw + b"\x00")
    for cut in range(len(raw)):
        with pytest.raises(WireError):
            SiteInfo.decode(raw[:cut])


@pytest.mark.parametrize(("address", "text"), [
    (bytes(12) + bytes([10, 0, 0, 1]), "10.0.0.1"),
    (bytes(16), "0.0.0.0"),
    (bytes.fromhex("20010db8000000000000000000000001"), "2001:db8::1"),
    (bytes.fromhex("20010db8000100000001000000000001"), "2001:db8:1:0:1::1"),
    (bytes.fromhex("20010db8000000010000000000000000"), "2001:db8:0:1::"),
    (bytes.fromhex("fe800000000000000000000000000000"), "fe80::"),
    (bytes.fromhex("00010000000000000000000000000000"), "1::"),
])
def test_server_address_text_as_handle_net(address, text):
    assert ServerInfo(1, address).address_text == text


def test_site_refuses_to_encode_fields_that_do_not_fit():
    with pytest.raises(WireError):
        SiteInfo(serial=70000).encode()
    with pytest.raises(WireError):
        SiteInfo(servers=(ServerInfo(1, b"\x01\x02\x03\x04"),)).encode()
    with pytest.raises(WireError):
        SiteInfo(servers=(ServerInfo(1, bytes(16), b"", (Interface(3, 1, -1),)),)).encode()


# ---------------------------------------------------------------- HS_PUBKEY

def test_rsa_key_layout_matches_cryptography_numbers():
    from cryptography.hazmat.primitives.asymmetric import rsa

    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()
    key = PublicKey.from_numbers("RSA_PUB_KEY", {"n": numbers.n, "e": numbers.e})
    raw = key.encode()
    # Handle.Net Util.getBytesFromPublicKey: type, u16 flags, exponent, modulus
    # (each Java BigInteger.toByteArray, so a leading zero when the top bit is
    # set), then four zero bytes (room for a fourth length it never writes).
    n_bytes = b"\x00" + numbers.n.to_bytes(128, "big")
    assert raw == s("RSA_PUB_KEY") + b"\x00\x00" + b(b"\x01\x00\x01") + b(n_bytes) + bytes(4)
    assert PublicKey.decode(raw).numbers() == {"n": numbers.n, "e": 65537}


def test_dsa_and_dh_keys_parse_in_wire_order():
    dsa = s("DSA_PUB_KEY") + b"\x00\x00" + b(b"\x0a") + b(b"\x0b") + b(b"\x0c") + b(b"\x0d")
    assert PublicKey.decode(dsa).numbers() == {"q": 10, "p": 11, "g": 12, "y": 13}
    dh = s("DH_PUB_KEY") + b"\x00\x00" + b(b"\x01") + b(b"\x02") + b(b"\x03")
    assert PublicKey.decode(dh).numbers() == {"y": 1, "p": 2, "g": 3}


def test_unknown_key_type_and_trailing_bytes_are_kept_opaque():
    raw = s("ED25519_PUB_KEY") + b"\x00\x07" + b"\x01" * 32
    key = PublicKey.decode(raw)
    assert (key.key_type, key.known, key.flags, key.parts, key.rest) == ("ED25519_PUB_KEY", False, 7, (), b"\x01" * 32)
    assert key.encode() == raw
    tail = s("RSA_PUB_KEY") + b"\x00\x00" + b(b"\x03") + b(b"\x05") + b"junk"
    assert PublicKey.decode(tail).rest == b"junk"
    assert PublicKey.decode(tail).encode() == tail


def test_key_from_numbers_refuses_missing_parts():
    with pytest.raises(WireError):
        PublicKey.from_numbers("RSA_PUB_KEY", {"n": 5})
    with pytest.raises(WireError):
        PublicKey.from_numbers("EC_PUB_KEY", {})


# ---------------------------------------------------------------- dispatch

@pytest.mark.parametrize(("vtype", "kind"), [
    ("HS_ADMIN", "admin"), ("hs_admin", "admin"), ("HS_ADMIN.extra", "admin"), ("HS_ADMINS", "opaque"),
    ("HS_SITE", "site"), ("HS_SITE.6", "site"), ("HS_SITE.PREFIX", "site"), ("HS_NA_DELEGATE", "site"),
    ("HS_VLIST", "vlist"), ("HS_PUBKEY", "key"), ("HS_SECKEY", "opaque"),
    ("URL", "text"), ("url", "text"), ("URL.METADATA", "text"), ("URLS", "opaque"), ("EMAIL", "text"),
    ("HS_ALIAS", "text"), ("DESC", "text"), ("HS_CERT", "text"), ("HS_SIGNATURE", "text"),
    ("10320/LOC", "opaque"), ("", "opaque"),
])
def test_kind_of_types(vtype, kind):
    assert kind_of(vtype) == kind


def test_has_type_matches_subtypes_only_at_a_dot():
    assert has_type("HS_SITE.PREFIX", "HS_SITE")
    assert not has_type("HS_SITEX", "HS_SITE")
    assert not has_type("HS_SITE", "HS_SITE.PREFIX")


def test_text_with_a_lone_surrogate_cannot_be_encoded():
    with pytest.raises(WireError):
        Text("\ud800").encode()
    with pytest.raises(WireError):
        AdminRef("\ud800", 1).encode()


def test_decode_data_dispatches_and_unknown_types_pass_through():
    assert decode_data("URL", "https://例え.jp/".encode()) == Text("https://例え.jp/")
    assert decode_data("X-CUSTOM", b"\x00\xffraw") == Opaque(b"\x00\xffraw")
    assert decode_data("HS_SECKEY", b"secret").encode() == b"secret"
    with pytest.raises(WireError):
        decode_data("URL", b"\xff\xfe")
    with pytest.raises(WireError):
        decode_data("HS_ADMIN", b"\x00")


# ---------------------------------------------------------------- round trips and fuzz

u8, u16, u32 = (st.integers(0, (1 << n) - 1) for n in (8, 16, 32))
text = st.text(max_size=20)
interfaces = st.builds(Interface, u8, u8, u32)
servers = st.builds(ServerInfo, u32, st.binary(min_size=16, max_size=16), st.binary(max_size=40),
                    st.lists(interfaces, max_size=3).map(tuple))
sites = st.builds(SiteInfo, st.lists(servers, max_size=3).map(tuple),
                  st.lists(st.tuples(text, text), max_size=3).map(tuple),
                  u16, u8, u8, text, u8, u8, u16)
admins = st.builds(AdminRef, text, u32, u16, st.booleans())
vlists = st.builds(VList, st.lists(st.builds(Reference, text, u32), max_size=4).map(tuple))
keys = st.one_of(
    st.builds(lambda q, p, g, y, f, r: PublicKey("DSA_PUB_KEY", (q, p, g, y), f, r),
              *[st.binary(max_size=20)] * 4, u16, st.binary(max_size=5)),
    st.builds(lambda e, n: PublicKey("RSA_PUB_KEY", (e, n)), st.binary(max_size=4), st.binary(max_size=40)),
    st.builds(PublicKey, st.text(max_size=12).filter(lambda t: t not in ("DSA_PUB_KEY", "RSA_PUB_KEY", "DH_PUB_KEY")),
              st.just(()), u16, st.binary(max_size=20)),
)
views = st.one_of(sites, admins, vlists, keys, st.builds(Text, text), st.builds(Opaque, st.binary(max_size=30)))


@settings(max_examples=300)
@given(views)
def test_views_round_trip_exactly(view):
    raw = view.encode()
    again = type(view).decode(raw)
    assert again == view
    assert again.encode() == raw


VIEW_TYPES = ["HS_ADMIN", "HS_SITE", "HS_VLIST", "HS_PUBKEY", "URL", "HS_SECKEY", "X-OTHER"]


@settings(max_examples=500)
@given(st.sampled_from(VIEW_TYPES), st.binary(max_size=200))
def test_decoders_on_arbitrary_bytes_parse_exactly_or_raise_wire_error(vtype, data):
    try:
        view = decode_data(vtype, data)
    except WireError:
        return
    assert view.encode() == data  # whatever parses is kept byte for byte


@settings(max_examples=100)
@given(views)
def test_every_prefix_parses_or_raises_wire_error(view):
    raw = view.encode()
    for cut in range(len(raw)):
        try:
            type(view).decode(raw[:cut])
        except WireError:
            pass

"""Handle.Net v9 JSON codec: real documents, both directions, errors and fuzz."""

import base64
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.jsoncodec import (
    JsonValueError, format_timestamp, parse_timestamp, record_to_json, value_from_json, value_to_json,
    values_from_json,
)
from protocol.values import HandleValue, Reference
from protocol.valuetypes import AdminRef, Interface, PublicKey, ServerInfo, SiteInfo, VList

PYHANDLE_RESOURCES = Path(__import__("pyhandle").__file__).parent / "tests" / "resources"

# The example answer in Handle.Net 9's hdlproxy REST-API.txt
# (GET /api/handles/4263537/4000).
HANDLE_NET_DOC_EXAMPLE = {
    "responseCode": 1,
    "handle": "4263537/4000",
    "values": [
        {"index": 100, "type": "HS_ADMIN",
         "data": {"format": "admin", "value": {"handle": "0.NA/4263537", "index": 200, "permissions": "011111111111"}},
         "ttl": 86400, "timestamp": "2000-04-10T22:41:46Z"},
        {"index": 1, "type": "URL", "data": {"format": "string", "value": "http://www.handle.net/index.html"},
         "ttl": 86400, "timestamp": "2001-11-21T16:21:35Z"},
        {"index": 2, "type": "EMAIL", "data": {"format": "string", "value": "hdladmin@cnri.reston.va.us"},
         "ttl": 86400, "timestamp": "2000-04-10T22:41:46Z"},
    ],
}

# A siteinfo.json as written for a Handle.Net 9 server (the "site" format).
SITE_JSON = {
    "version": 1,
    "protocolVersion": "2.10",
    "serialNumber": 1,
    "primarySite": True,
    "multiPrimary": False,
    "attributes": [{"name": "desc", "value": "A containerized Handle.net server"}],
    "servers": [{
        "serverId": 1,
        "address": "192.0.2.10",
        "publicKey": {"format": "base64", "value": base64.b64encode(b"not a key").decode()},
        "interfaces": [
            {"query": True, "admin": True, "protocol": "TCP", "port": 2641},
            {"query": True, "admin": False, "protocol": "UDP", "port": 2641},
            {"query": True, "admin": True, "protocol": "HTTP", "port": 8000},
        ],
    }],
}


# ---------------------------------------------------------------- real documents

def test_handle_net_doc_example_decodes_and_reencodes_identically():
    values = values_from_json(HANDLE_NET_DOC_EXAMPLE)
    admin, url, email = values
    assert AdminRef.decode(admin.data) == AdminRef("0.NA/4263537", 200, 0x7FF)
    assert (url.index, url.type, url.data, url.ttl) == (1, "URL", b"http://www.handle.net/index.html", 86400)
    assert url.timestamp == 1006359695  # 2001-11-21T16:21:35Z
    assert email.permissions == 0b1110 and not email.ttl_absolute and email.references == ()
    assert record_to_json("4263537/4000", values) == HANDLE_NET_DOC_EXAMPLE


@pytest.mark.parametrize("name", ["handlerecord_for_reading_PUBLIC.json", "handlerecord_with_10320LOC_PUBLIC.json"])
def test_pyhandle_fixture_records_survive_a_round_trip(name):
    doc = json.loads((PYHANDLE_RESOURCES / name).read_text())
    values = values_from_json(doc)
    assert record_to_json(doc["handle"], values) == doc


def test_pyhandle_register_payload():
    # From pyhandle 1.5.0 handleclient_write_patched_unit_test (register_handle):
    # the admin index is sent as the *string* "200" and data as bare strings.
    payload = {"values": [
        {"index": 100, "type": "HS_ADMIN",
         "data": {"value": {"index": "200", "handle": "0.NA/my", "permissions": "011111110011"}, "format": "admin"}},
        {"index": 1, "type": "URL", "data": "http://foo.bar"},
        {"index": 2, "type": "CHECKSUM", "data": "123456"},
        {"index": 3, "type": "FOO", "data": "foo"},
    ]}
    admin, url, checksum, foo = values_from_json(payload)
    assert AdminRef.decode(admin.data) == AdminRef("0.NA/my", 200, 0b011111110011)
    assert [(v.index, v.type, v.data) for v in (url, checksum, foo)] == [
        (1, "URL", b"http://foo.bar"), (2, "CHECKSUM", b"123456"), (3, "FOO", b"foo")]
    assert all(v.ttl == 86400 and v.permissions == 0b1110 and v.timestamp == 0 for v in (admin, url, foo))


def test_pyhandle_modify_payload_echoes_our_output_with_new_data():
    # modify_handle_value resends the entry it read, timestamp popped, data
    # replaced by the bare new string, permissions/ttl kept as we printed them.
    stored = HandleValue(5, "URL", b"http://old", ttl=3600, timestamp=1_700_000_000, permissions=0b1111)
    entry = value_to_json(stored)
    entry.pop("timestamp")
    entry["data"] = "http://new"
    (value,) = values_from_json({"values": [entry]})
    assert value == HandleValue(5, "URL", b"http://new", ttl=3600, permissions=0b1111)


def test_site_json_round_trip_and_fields():
    value = value_from_json({"index": 1, "type": "HS_SITE", "data": {"format": "site", "value": SITE_JSON}})
    site = SiteInfo.decode(value.data)
    assert (site.major, site.minor, site.serial, site.is_primary) == (2, 10, 1, True)
    (server,) = site.servers
    assert server.address == bytes(12) + bytes([192, 0, 2, 10]) and server.public_key == b"not a key"
    assert [(i.type, i.transport, i.port) for i in server.interfaces] == [
        (Interface.ADMIN_AND_QUERY, Interface.TCP, 2641), (Interface.QUERY, Interface.UDP, 2641),
        (Interface.ADMIN_AND_QUERY, Interface.HTTP, 8000)]
    assert value_to_json(value)["data"] == {"format": "site", "value": SITE_JSON}


def test_site_booleans_accept_gson_style_strings():
    site_json = {**SITE_JSON, "primarySite": "TRUE", "multiPrimary": "false"}
    site = SiteInfo.decode(value_from_json({"index": 1, "type": "HS_SITE",
                                            "data": {"format": "site", "value": site_json}}).data)
    assert site.is_primary and not site.multi_primary
    with pytest.raises(JsonValueError, match="primarySite: expected a boolean"):
        value_from_json({"index": 1, "type": "HS_SITE",
                         "data": {"format": "site", "value": {**SITE_JSON, "primarySite": "yes"}}})


def test_legacy_capitalised_site_json_is_accepted():
    legacy = {"version": 1, "protocolVersion": "2.1", "serialNumber": 3, "primarySite": True, "multiPrimary": False,
              "attributes": {"desc": "old", "alt_addr.1": ["10.0.0.2", "10.0.0.3"]},
              "ServerList": [{"ServerId": 2, "Address": "10.0.0.1", "PublicKey": "0a0b",
                              "InterfaceList": [{"Query": True, "Admin": False, "Protocol": "UDP", "Port": 2641}]}]}
    site = SiteInfo.decode(value_from_json({"index": 1, "type": "HS_SITE", "data": {"format": "site", "value": legacy}}).data)
    assert site.attributes == (("desc", "old"), ("alt_addr.1", "10.0.0.2"), ("alt_addr.1", "10.0.0.3"))
    assert site.servers == (ServerInfo(2, bytes(12) + bytes([10, 0, 0, 1]), b"\x0a\x0b", (Interface(2, 0, 2641),)),)


def test_site_with_ipv6_and_mapped_addresses_is_exact():
    site = SiteInfo(servers=(
        ServerInfo(1, bytes.fromhex("20010db8000000000000000000000001"), b"k"),
        ServerInfo(2, bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1]), b"k"),
    ), hash_option=SiteInfo.HASH_BY_PREFIX, hash_filter="x")
    out = value_to_json(HandleValue(1, "HS_SITE.PREFIX", site.encode()))
    assert out["data"]["format"] == "site"
    assert [s["address"] for s in out["data"]["value"]["servers"]] == ["2001:db8::1", "::ffff:a00:1"]
    assert (out["data"]["value"]["hashOption"], out["data"]["value"]["hashFilter"]) == (0, "x")
    assert value_from_json(out).data == site.encode()


def test_rsa_pubkey_uses_key_format_matching_cryptography():
    from cryptography.hazmat.primitives.asymmetric import rsa

    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()
    data = PublicKey.from_numbers("RSA_PUB_KEY", {"n": numbers.n, "e": numbers.e}).encode()
    out = value_to_json(HandleValue(300, "HS_PUBKEY", data))
    key = out["data"]["value"]
    assert out["data"]["format"] == "key" and key["kty"] == "RSA"
    assert int.from_bytes(base64.urlsafe_b64decode(key["n"] + "=="), "big") == numbers.n
    assert key["e"] == "AQAB" and "=" not in key["n"]
    assert value_from_json(out).data == data


def test_dsa_pubkey_key_format_and_non_java_integers_fall_back_to_base64():
    data = PublicKey("DSA_PUB_KEY", (b"\x11", b"\x7f\x01", b"\x05", b"\x00\x80")).encode()
    out = value_to_json(HandleValue(300, "HS_PUBKEY", data))
    assert out["data"] == {"format": "key", "value": {"kty": "DSA", "y": "gA", "p": "fwE", "q": "EQ", "g": "BQ"}}
    assert value_from_json(out).data == data
    # Stored without Java's sign byte: the key form would change the bytes, so base64.
    odd = PublicKey("RSA_PUB_KEY", (b"\x01\x00\x01", b"\x80\x01")).encode()
    assert value_to_json(HandleValue(300, "HS_PUBKEY", odd))["data"]["format"] == "base64"


@pytest.mark.parametrize("key", [
    PublicKey("DH_PUB_KEY", (b"\x01", b"\x02", b"\x03")),
    PublicKey("ED25519_PUB_KEY", (), 0, b"\x01" * 32),
    PublicKey("RSA_PUB_KEY", (b"\x03", b"\x05"), 0, b"trailing"),
])
def test_keys_without_a_json_form_stay_base64(key):
    out = value_to_json(HandleValue(300, "HS_PUBKEY", key.encode()))
    assert out["data"]["format"] == "base64"
    assert value_from_json(out).data == key.encode()


def test_vlist_format_both_ways():
    refs = (Reference("0.NA/88", 200), Reference("88/admins", 300))
    out = value_to_json(HandleValue(400, "HS_VLIST", VList(refs).encode()))
    assert out["data"] == {"format": "vlist", "value": [{"handle": "0.NA/88", "index": 200},
                                                         {"handle": "88/admins", "index": 300}]}
    assert value_from_json(out).data == VList(refs).encode()


def test_admin_extra_permission_bits_and_legacy_flag_round_trip():
    for ref in (AdminRef("0.NA/88", 200, 0xF0F0), AdminRef("0.NA/88", 1, 0, legacy_length=True)):
        out = value_to_json(HandleValue(100, "HS_ADMIN", ref.encode()))
        assert out["data"]["format"] == "admin"
        assert AdminRef.decode(value_from_json(out).data) == ref
    assert value_to_json(HandleValue(100, "HS_ADMIN", AdminRef("a/b", 1, 0x0F0F).encode()))["data"]["value"] == {
        "handle": "a/b", "index": 1, "permissions": "111100001111"}


# ---------------------------------------------------------------- formats and fields

@pytest.mark.parametrize(("data", "expected"), [
    ("plain", b"plain"),
    (12345, b"12345"),
    ({"format": "string", "value": "h\u00e9"}, "h\u00e9".encode()),
    ({"format": "STRING", "value": 7}, b"7"),
    ({"format": "base64", "value": "AAEC/w=="}, b"\x00\x01\x02\xff"),
    ({"format": "base64", "value": "AAEC_w"}, b"\x00\x01\x02\xff"),
    ({"format": "base64", "value": "AAEC\r\n/w=="}, b"\x00\x01\x02\xff"),
    ({"format": "base64", "value": ""}, b""),
    ({"format": "hex", "value": "00ff0A"}, b"\x00\xff\x0a"),
    ({"format": "admin", "value": {"handle": "0.NA/1", "index": 7, "permissions": "*"}},
     AdminRef("0.NA/1", 7, 0xFFF).encode()),
    ({"format": "admin", "value": {"handle": "0.NA/1", "index": 7, "permissions": [1, 0, True, None, "x"]}},
     AdminRef("0.NA/1", 7, 0b10101).encode()),
    ({"format": "admin", "value": {"handle": "0.NA/1", "index": 7, "permissions": [{}, [], "", 0.0, False]}},
     AdminRef("0.NA/1", 7, 0b11).encode()),
    ({"format": "admin", "value": {"handle": "0.NA/1", "index": 7, "permissions": True}},
     AdminRef("0.NA/1", 7, 0xFFF).encode()),
    ({"format": "admin", "value": {"handle": "0.NA/1", "index": 7, "permissions": 3}},
     AdminRef("0.NA/1", 7, 3).encode()),
    ({"format": "admin", "value": {"handle": "0.NA/1", "index": 7}}, AdminRef("0.NA/1", 7, 0).encode()),
    ({"format": "vlist", "value": []}, b"\x00\x00\x00\x00"),
])
def test_data_input_formats(data, expected):
    assert value_from_json({"index": 1, "type": "X", "data": data}).data == expected


@pytest.mark.parametrize(("data", "fmt"), [
    (b"", "string"),
    ("http://example.org/?q=1&r=é".encode(), "string"),
    ("tab\tnew\nline\rend".encode(), "string"),
    (b"\x00abc", "base64"),
    (b"\x14", "base64"),      # Handle.Net's looksLikeBinary passes 0x09..0x13 only
    (b"\x13", "string"),
    (b"\x7f", "base64"),
    (b"\xc3\x28", "base64"),  # not UTF-8
    (b"\xed\xa0\x80", "base64"),  # a UTF-8 encoded surrogate
])
def test_output_format_chosen_like_handle_net(data, fmt):
    out = value_to_json(HandleValue(2, "DESC", data))
    assert out["data"]["format"] == fmt
    assert value_from_json(out).data == data


def test_malformed_special_types_fall_back_to_plain_formats():
    assert value_to_json(HandleValue(100, "HS_ADMIN", b"admin as text"))["data"] == {
        "format": "string", "value": "admin as text"}
    assert value_to_json(HandleValue(1, "HS_SITE", b"\x00\x01"))["data"]["format"] == "base64"


def test_permissions_ttl_timestamp_references_output():
    value = HandleValue(3, "URL", b"u", ttl=1_800_000_000, ttl_absolute=True, timestamp=1_764_237_600,
                        permissions=0b1100, references=(Reference("0.NA/88", 300),))
    out = value_to_json(value)
    assert list(out) == ["index", "type", "data", "permissions", "ttl", "timestamp", "references"]
    assert out["permissions"] == "1100"
    assert out["ttl"] == "2027-01-15T08:00:00Z"
    assert out["timestamp"] == "2025-11-27T10:00:00Z"
    assert out["references"] == [{"handle": "0.NA/88", "index": 300}]
    assert value_from_json(out) == value
    plain = value_to_json(HandleValue(3, "URL", b"u"))
    assert list(plain) == ["index", "type", "data", "ttl"] and plain["ttl"] == 86400


@pytest.mark.parametrize(("perms", "bits"), [
    ("1110", 0b1110), ("1111", 0b1111), ("0010", 0b0010), ("*", 0b1111), (1010, 0b1010),
    ("1", 0b1111), ("10", 0b1110), ("0", 0b1110), ("01", 0b1101),  # short strings: rightmost bits
])
def test_value_permissions_input(perms, bits):
    assert value_from_json({"index": 1, "type": "X", "data": "", "permissions": perms}).permissions == bits


@pytest.mark.parametrize(("text", "seconds"), [
    ("2026-11-27T10:00:00Z", 1_795_773_600),
    ("2026-11-27T10:00:00.999Z", 1_795_773_600),
    ("2026-11-27T10:00:00+00:00", 1_795_773_600),
    ("2026-11-27T18:00:00+08:00", 1_795_773_600),
    ("2026-11-27T10:00:00", 1_795_773_600),
    ("1970-01-01T00:00:00Z", 0),
    (1_795_773_600, 1_795_773_600),
])
def test_timestamps_accepted(text, seconds):
    assert parse_timestamp(text) == seconds
    assert format_timestamp(seconds) == "2026-11-27T10:00:00Z" or seconds == 0


def test_timestamp_and_ttl_forms_on_values():
    v = value_from_json({"index": 1, "type": "X", "data": "", "ttl": "2026-11-27T10:00:00+00:00",
                         "timestamp": "2026-11-27T10:00:00Z"})
    assert (v.ttl, v.ttl_absolute, v.timestamp) == (1_795_773_600, True, 1_795_773_600)
    assert value_from_json({"index": 1, "type": "X", "data": "", "ttl": "600"}).ttl == 600
    assert value_from_json({"index": "7", "type": "X", "data": "", "ttl": 60.0}).index == 7


# ---------------------------------------------------------------- bodies

def test_values_from_json_accepts_the_three_body_shapes():
    one = {"index": 1, "type": "URL", "data": "http://a"}
    assert values_from_json([one]) == values_from_json({"values": [one]}) == values_from_json(one)
    assert values_from_json({"values": None}) == [] and values_from_json([]) == []
    assert values_from_json({"handle": "88.1/ABC", "values": [one]}, handle="88.1/abc")[0].data == b"http://a"
    with pytest.raises(JsonValueError, match="body names"):
        values_from_json({"handle": "88.1/other", "values": [one]}, handle="88.1/abc")


def test_values_from_json_validates_the_set():
    one = {"index": 1, "type": "URL", "data": "http://a"}
    with pytest.raises(JsonValueError, match="duplicate value index 1"):
        values_from_json([one, one])
    with pytest.raises(JsonValueError, match=r"values\[1\]\.data"):
        values_from_json([one, {"index": 2, "type": "URL"}])
    with pytest.raises(JsonValueError, match="expected"):
        values_from_json({"something": "else"})


def test_secrets_are_never_serialised():
    secret = HandleValue(300, "HS_SECKEY", b"password")
    with pytest.raises(ValueError, match="secret"):
        value_to_json(secret)
    with pytest.raises(ValueError, match="secret"):
        value_to_json(secret.with_(type="hs_seckey"))
    out = record_to_json("88/x", [HandleValue(1, "URL", b"u"), secret])
    assert [v["index"] for v in out["values"]] == [1]
    assert b"password" not in orjson.dumps(out)
    # ... but clients may still set one.
    assert value_from_json({"index": 300, "type": "HS_SECKEY", "data": "pw"}).data == b"pw"


# ---------------------------------------------------------------- errors

BAD = [
    ("not an object", "value", "expected an object"),
    ({"type": "URL", "data": "x"}, "value.index", "missing"),
    ({"index": 0, "type": "URL", "data": "x"}, "value.index", "out of range"),
    ({"index": 1 << 32, "type": "URL", "data": "x"}, "value.index", "out of range"),
    ({"index": -1, "type": "URL", "data": "x"}, "value.index", "out of range"),
    ({"index": True, "type": "URL", "data": "x"}, "value.index", "boolean"),
    ({"index": 1.5, "type": "URL", "data": "x"}, "value.index", "integer"),
    ({"index": "one", "type": "URL", "data": "x"}, "value.index", "integer"),
    ({"index": 1, "data": "x"}, "value.type", "missing"),
    ({"index": 1, "type": " ", "data": "x"}, "value.type", "empty"),
    ({"index": 1, "type": 5, "data": "x"}, "value.type", "string"),
    ({"index": 1, "type": "URL"}, "value.data", "missing"),
    ({"index": 1, "type": "URL", "data": None}, "value.data", "null"),
    ({"index": 1, "type": "URL", "data": ["x"]}, "value.data", "expected an object"),
    ({"index": 1, "type": "URL", "data": "\ud800"}, "value.data", "surrogate"),
    ({"index": 1, "type": "URL", "data": {"value": "x"}}, "value.data.format", "missing"),
    ({"index": 1, "type": "URL", "data": {"format": "utf16", "value": "x"}}, "value.data.format", "unknown"),
    ({"index": 1, "type": "URL", "data": {"format": "string"}}, "value.data.value", "missing"),
    ({"index": 1, "type": "URL", "data": {"format": "string", "value": None}}, "value.data.value", "string"),
    ({"index": 1, "type": "X", "data": {"format": "base64", "value": "AA=A"}}, "value.data.value", "base64"),
    ({"index": 1, "type": "X", "data": {"format": "base64", "value": "A"}}, "value.data.value", "length"),
    ({"index": 1, "type": "X", "data": {"format": "base64", "value": "AA*"}}, "value.data.value", "base64"),
    ({"index": 1, "type": "X", "data": {"format": "hex", "value": "abc"}}, "value.data.value", "hex"),
    ({"index": 1, "type": "X", "data": {"format": "hex", "value": "zz"}}, "value.data.value", "hex"),
    ({"index": 1, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"handle": "0.NA/1", "index": None}}},
     "value.data.value.index", "missing"),  # pyhandle's handleowner without "index:"
    ({"index": 1, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"index": 200}}},
     "value.data.value.handle", "missing"),
    ({"index": 1, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"handle": "a/b", "index": 1,
                                                                              "permissions": "01x"}}},
     "value.data.value.permissions", "'0'/'1'"),
    ({"index": 1, "type": "HS_ADMIN", "data": {"format": "admin", "value": "0.NA/1"}}, "value.data.value", "object"),
    ({"index": 1, "type": "HS_VLIST", "data": {"format": "vlist", "value": [None]}}, "value.data.value[0]", "object"),
    ({"index": 1, "type": "HS_VLIST", "data": {"format": "vlist", "value": [{"handle": "a/b", "index": -2}]}},
     "value.data.value[0].index", "range"),
    ({"index": 1, "type": "HS_SITE", "data": {"format": "site", "value": {"protocolVersion": "two"}}},
     "value.data.value.protocolVersion", "major.minor"),
    ({"index": 1, "type": "HS_SITE", "data": {"format": "site", "value": {"servers": [
        {"serverId": 1, "address": "example.org", "publicKey": ""}]}}},
     "value.data.value.servers[0].address", "IP address"),
    ({"index": 1, "type": "HS_SITE", "data": {"format": "site", "value": {"servers": [
        {"serverId": 1, "address": "10.0.0.1"}]}}}, "value.data.value.servers[0].publicKey", "missing"),
    ({"index": 1, "type": "HS_SITE", "data": {"format": "site", "value": {"servers": [
        {"serverId": 1, "address": "10.0.0.1", "publicKey": "", "interfaces": [{"query": True, "admin": True,
                                                                             "protocol": "QUIC", "port": 1}]}]}}},
     "value.data.value.servers[0].interfaces[0].protocol", "integer"),
    ({"index": 1, "type": "HS_SITE", "data": {"format": "site", "value": {"serialNumber": 70000}}},
     "value.data.value.serialNumber", "range"),
    ({"index": 1, "type": "HS_PUBKEY", "data": {"format": "key", "value": {"kty": "EC", "x": "AA"}}},
     "value.data.value.kty", "unsupported"),
    ({"index": 1, "type": "HS_PUBKEY", "data": {"format": "key", "value": {"kty": "RSA", "n": "AQAB"}}},
     "value.data.value.e", "missing"),
    ({"index": 1, "type": "URL", "data": "x", "ttl": "tomorrow"}, "value.ttl", "ISO 8601"),
    ({"index": 1, "type": "URL", "data": "x", "ttl": -5}, "value.ttl", "range"),
    ({"index": 1, "type": "URL", "data": "x", "ttl": [1]}, "value.ttl", "integer"),
    ({"index": 1, "type": "URL", "data": "x", "timestamp": "1969-12-31T23:59:59Z"}, "value.timestamp", "range"),
    ({"index": 1, "type": "URL", "data": "x", "timestamp": "2200-01-01T00:00:00Z"}, "value.timestamp", "range"),
    ({"index": 1, "type": "URL", "data": "x", "permissions": "11111"}, "value.permissions", "'0'/'1'"),
    ({"index": 1, "type": "URL", "data": "x", "permissions": "rw"}, "value.permissions", "'0'/'1'"),
    ({"index": 1, "type": "URL", "data": "x", "references": {"handle": "a/b"}}, "value.references", "list"),
    ({"index": 1, "type": "URL", "data": "x", "references": [{"handle": "a/b"}]}, "value.references[0].index",
     "missing"),
]


@pytest.mark.parametrize(("obj", "where", "problem"), BAD)
def test_malformed_values_raise_json_value_error_with_path(obj, where, problem):
    with pytest.raises(JsonValueError) as info:
        value_from_json(obj)
    assert info.value.where == where
    assert problem in info.value.problem
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------- fuzz

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_any = st.recursive(json_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)), max_leaves=20)

FORMATS = ["string", "base64", "hex", "admin", "vlist", "site", "key", "other"]
SITE_KEYS = ["version", "protocolVersion", "serialNumber", "primarySite", "multiPrimary", "hashOption",
             "hashFilter", "attributes", "servers", "ServerList"]
SERVER_KEYS = ["serverId", "address", "publicKey", "interfaces", "Address"]
INTF_KEYS = ["query", "admin", "protocol", "port", "Port"]
small = st.one_of(json_leaf, st.sampled_from(["10.0.0.1", "::1", "TCP", "2.10", "*", "0101", "AQAB", "RSA", "DSA"]))


def shaped(keys, value):
    return st.dictionaries(st.sampled_from(keys), value, max_size=len(keys))


interface_like = shaped(INTF_KEYS, small)
server_like = shaped(SERVER_KEYS, st.one_of(small, st.lists(interface_like, max_size=2)))
site_like = shaped(SITE_KEYS, st.one_of(small, st.lists(server_like, max_size=2),
                                        st.lists(shaped(["name", "value"], small), max_size=2)))
data_like = st.one_of(json_any, st.fixed_dictionaries(
    {"format": st.sampled_from(FORMATS)},
    optional={"value": st.one_of(json_any, site_like, shaped(["handle", "index", "permissions", "kty", "n", "e",
                                                              "y", "p", "q", "g"], small),
                                 st.lists(shaped(["handle", "index"], small), max_size=3))}))
value_like = st.fixed_dictionaries({}, optional={
    "index": st.one_of(st.integers(-3, 2**33), json_leaf), "type": st.one_of(st.sampled_from(
        ["URL", "HS_ADMIN", "HS_SITE", "HS_PUBKEY", ""]), json_leaf),
    "data": data_like, "ttl": st.one_of(json_leaf, st.just("2026-01-01T00:00:00Z")),
    "timestamp": json_leaf, "permissions": small, "references": st.one_of(json_any, st.lists(
        shaped(["handle", "index"], small), max_size=2))})


@settings(max_examples=600)
@given(st.one_of(json_any, value_like))
def test_value_from_json_returns_or_raises_json_value_error(obj):
    try:
        value = value_from_json(obj)
    except JsonValueError:
        return
    assert isinstance(value, HandleValue) and isinstance(value.data, bytes)
    assert value_from_json(value_to_json(value)) == value


@settings(max_examples=300)
@given(st.sampled_from(["site", "admin", "key", "vlist"]), st.one_of(site_like, json_any, shaped(
    ["handle", "index", "permissions", "legacyByteLength", "kty", "n", "e", "y", "p", "q", "g"], small)))
def test_structured_formats_return_or_raise_json_value_error(fmt, body):
    try:
        value = value_from_json({"index": 1, "type": "HS_SITE", "data": {"format": fmt, "value": body}})
    except JsonValueError:
        return
    assert value_from_json(value_to_json(value)) == value


@settings(max_examples=200)
@given(st.one_of(json_any, st.lists(value_like, max_size=3), st.fixed_dictionaries({"values": st.lists(value_like,
                                                                                                     max_size=3)})))
def test_values_from_json_returns_or_raises_json_value_error(obj):
    try:
        values_from_json(obj, handle="88/x")
    except JsonValueError:
        pass


special_data = st.one_of(
    st.binary(max_size=60),
    st.builds(lambda h, i, p, l: AdminRef(h, i, p, l).encode(), st.text(max_size=10),
              st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF), st.booleans()),
    st.builds(lambda refs: VList(tuple(refs)).encode(), st.lists(st.builds(Reference, st.text(max_size=8),
                                                                           st.integers(0, 2**32 - 1)), max_size=3)),
    st.builds(lambda q, p, g, y: PublicKey("DSA_PUB_KEY", (q, p, g, y)).encode(), *[st.binary(max_size=9)] * 4),
    st.builds(lambda addr, mask, port: SiteInfo(servers=(ServerInfo(1, addr, b"k", (Interface(3, 1, port),)),),
                                                primary_mask=mask).encode(),
              st.binary(min_size=16, max_size=16), st.sampled_from([0, 0x80, 0x40, 0xC0, 0x01]),
              st.integers(0, 2**32 - 1)),
)
handle_values = st.builds(
    HandleValue,
    index=st.integers(1, 2**32 - 1),
    type=st.one_of(st.sampled_from(["URL", "HS_ADMIN", "HS_SITE", "HS_VLIST", "HS_PUBKEY", "EMAIL", "10320/LOC"]),
                   st.text(min_size=1, max_size=10).filter(lambda t: t.strip() and "SECKEY" not in t.upper())),
    data=special_data,
    ttl=st.integers(0, 2**32 - 1),
    ttl_absolute=st.booleans(),
    timestamp=st.integers(0, 2**32 - 1),
    permissions=st.integers(0, 15),
    references=st.lists(st.builds(Reference, st.text(max_size=8), st.integers(0, 2**32 - 1)), max_size=2).map(tuple),
)


@settings(max_examples=400)
@given(handle_values)
def test_any_value_survives_json_and_orjson_exactly(value):
    out = value_to_json(value)
    again = orjson.loads(orjson.dumps(out))
    assert again == out
    assert value_from_json(again) == value


# ---------------------------------------------------------------- pyhandle against a live endpoint

STAMP = 1_795_773_600


class _Records:
    """A tiny /api/handles endpoint on 127.0.0.1 using this codec, so pyhandle
    1.5.0 itself produces the request bodies and reads our answers."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, unquote, urlsplit

        self.records: dict[str, list[HandleValue]] = {
            "my/admin": [HandleValue(300, "HS_SECKEY", b"pw", timestamp=STAMP, permissions=0b1100)]}
        self.bodies: list[dict] = []
        self.errors: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                raw = orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _target(self):
                url = urlsplit(self.path)
                return unquote(url.path.removeprefix("/api/handles/")), parse_qs(url.query)

            def do_GET(self):
                handle, _ = self._target()
                if handle not in outer.records:
                    return self._send(404, {"responseCode": 100, "handle": handle})
                self._send(200, record_to_json(handle, outer.records[handle]))

            def do_PUT(self):
                handle, query = self._target()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                try:
                    values = values_from_json(body, handle=handle)
                except JsonValueError as exc:
                    outer.errors.append(str(exc))
                    return self._send(400, {"responseCode": 202, "handle": handle, "message": str(exc)})
                # A store stamps every write; pyhandle's modify relies on it
                # (it pops "timestamp" from each entry it read).
                values = [v.with_(timestamp=STAMP) for v in values]
                if "index" in query:
                    kept = {v.index: v for v in outer.records.get(handle, [])}
                    kept.update({v.index: v for v in values})
                    values = sorted(kept.values(), key=lambda v: v.index)
                created = handle not in outer.records
                outer.records[handle] = values
                self._send(201 if created else 200, {"responseCode": 1, "handle": handle})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def endpoint(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    records = _Records()
    yield records
    records.close()


def test_pyhandle_register_read_and_modify_through_this_codec(endpoint):
    from pyhandle.client.resthandleclient import RESTHandleClient

    client = RESTHandleClient.instantiate_with_username_and_password(endpoint.url, "300:my/admin", "pw")
    assert client.register_handle("my/rec1", "http://example.org/a", checksum="abc", FOO="foo") == "my/rec1"
    stored = {v.type: v for v in endpoint.records["my/rec1"]}
    assert AdminRef.decode(stored["HS_ADMIN"].data) == AdminRef("0.NA/my", 200, 0b011111110011)
    assert stored["HS_ADMIN"].index == 100 and stored["URL"].index == 1
    assert (stored["URL"].data, stored["CHECKSUM"].data, stored["FOO"].data) == (b"http://example.org/a", b"abc",
                                                                                   b"foo")
    assert endpoint.bodies[-1]["values"][0]["data"]["value"]["index"] == "200"  # pyhandle sends a string

    record = client.retrieve_handle_record("my/rec1")
    assert record["URL"] == "http://example.org/a" and record["FOO"] == "foo"
    assert "0.NA/my" in record["HS_ADMIN"]

    client.modify_handle_value("my/rec1", URL="http://example.org/b", NEW="n")
    assert client.get_value_from_handle("my/rec1", "URL") == "http://example.org/b"
    assert client.get_value_from_handle("my/rec1", "NEW") == "n"
    assert client.get_value_from_handle("my/rec1", "FOO") == "foo"
    assert endpoint.errors == []


def test_pyhandle_register_json_with_explicit_owner(endpoint):
    from pyhandle.client.resthandleclient import RESTHandleClient

    client = RESTHandleClient.instantiate_with_username_and_password(
        endpoint.url, "300:my/admin", "pw", handleowner="301:my/admin")
    entries = [{"index": 1, "type": "URL", "data": {"format": "string", "value": "http://x"}},
               {"index": 7, "type": "BIN", "data": {"format": "base64", "value": "AAEC"}, "ttl": 60}]
    assert client.register_handle_json("my/rec2", entries) == "my/rec2"
    stored = {v.index: v for v in endpoint.records["my/rec2"]}
    assert (stored[1].data, stored[7].data, stored[7].ttl) == (b"http://x", b"\x00\x01\x02", 60)
    assert AdminRef.decode(stored[100].data) == AdminRef("my/admin", 301, 0b011111110011)
    # What we print for it reads back the same way.
    assert values_from_json(record_to_json("my/rec2", endpoint.records["my/rec2"])) == endpoint.records["my/rec2"]
    assert endpoint.errors == []

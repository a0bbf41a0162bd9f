"""Configuration, built once into a frozen object and passed down.

Load order: defaults (mirrored in config/idnode.toml) -> TOML file ->
``IDNODE_<SECTION>_<KEY>`` environment -> explicit overrides (CLI flags).
The file is the first of: ``--config FILE``, ``IDNODE_CONFIG``,
``<home>/idnode.toml``, ``config/idnode.toml`` (from the current directory)
that is given or exists; with none, defaults (see :func:`find_config`).
Every value is checked here, once: its type, its range (``_RANGES``) or its
choices, so a bad one is refused with its key and where it came from.
Nothing else in the node reads the environment.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from registry.validation import SizeLimits


class SettingsError(ValueError):
    """A setting has a wrong name or value."""


@dataclass(frozen=True, slots=True)
class NodeSettings:
    home: str = "./var"
    secondary_prefix: str = "88.118"
    workers: int = 0


@dataclass(frozen=True, slots=True)
class HttpSettings:
    bind: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 8 * 1024 * 1024
    batch_max_items: int = 2000
    page_size: int = 1000
    # Connections (resolver.connections, resolver.http_connections); per worker process.
    header_timeout: float = 10.0       # seconds from the accept to the first whole request head
    body_timeout: float = 30.0         # seconds from a request head to the end of its body (then 408)
    keepalive_timeout: float = 15.0    # seconds idle between requests, next head included
    send_timeout: float = 30.0         # seconds a client may take none of its full response buffer
    max_connections: int = 10000       # open at once (503 beyond)
    max_connections_per_source: int = 256    # from one IPv4 address or IPv6 /64 (0: no bound)
    max_json_depth: int = 32           # deepest nesting of a JSON or CBOR request body


@dataclass(frozen=True, slots=True)
class HandleSettings:
    """The Handle binary protocol on TCP and UDP (the HTTP transport shares [http])."""
    bind: str = ""                     # empty: the same address as http.bind
    port: int = 2641
    idle_timeout: float = 5.0          # seconds a TCP connection may wait for its next whole request
    max_message_bytes: int = 256 * 1024
    site_serial: int = 1               # serial of this node's HS_SITE (get site info)
    address: str = ""                  # advertised in HS_SITE; empty: the bind address
    challenge_timeout: float = 60.0    # seconds a client has to answer an authentication challenge
    max_challenges: int = 1024         # pending challenges kept at once
    udp_timeout: float = 10.0          # seconds a multi-packet UDP request may take to arrive
    # Amplification and response-rate limiting over UDP (see "Running on the open network").
    max_udp_reply_bytes: int = 4096    # larger answers are refused over UDP (RC 2: retry over TCP)
    udp_rate: float = 200.0            # answers per second to one source prefix (IPv4 /24, IPv6 /56); 0: no limit
    udp_burst: int = 400               # answers a quiet source prefix may get at once
    udp_slip: int = 2                  # every Nth limited request gets a small RC 2 reply (0: drop them all)
    udp_rate_exempt: str = "127.0.0.0/8,::1/128"     # networks never limited, comma-separated
    udp_rate_sources: int = 65536      # source prefixes tracked at once
    challenges_per_source: int = 16    # pending challenges one source prefix may hold
    # Sessions (opCode 400) and IDIS logins (2000/2001); see README "Administration from SDKs".
    max_sessions: int = 1024           # sessions one worker sets up and keeps at once (the oldest makes room)
    sessions_per_source: int = 16      # sessions one source prefix may hold (per worker)
    session_timeout: float = 3600.0    # the longest a session lives (a client asking for less gets less)
    login_timeout: float = 86400.0     # seconds an IDIS login holds on its TCP connection
    crypto_rate: float = 100.0         # signatures a second one source prefix may ask for (0: no limit)
    crypto_burst: int = 200            # ... at once (a session setup counts 10 more)
    # TCP connections (resolver.connections); per worker process.
    max_connections: int = 10000       # open at once (closed at once beyond)
    max_connections_per_source: int = 256    # from one IPv4 address or IPv6 /64 (0: no bound)
    max_unread_bytes: int = 1024 * 1024      # replies one connection holds that its client has not taken
    send_timeout: float = 30.0         # seconds a client may take none of them before it is cut off


@dataclass(frozen=True, slots=True)
class AuthSettings:
    failure_delay: float = 0.5
    lockout_failures: int = 5
    lockout_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """Rules every write path obeys, whatever the backend."""
    max_value_bytes: int = 64 * 1024   # one value: its type, data and references
    max_record_bytes: int = 1024 * 1024   # all the values of one identifier

    def limits(self) -> SizeLimits:
        return SizeLimits(self.max_value_bytes, self.max_record_bytes)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    url: str = ""                      # empty: sqlite://<home>/registry.sqlite3; redis://, rediss://, redis+cluster://
    poll_interval: float = 0.5
    replicas: int = -1                 # Redis: replicas a write waits for (WAIT); -1: 1 on a cluster, 0 on one server
    replica_timeout: float = 1.0       # Redis: seconds a write waits for them
    timeout: float = 1.0               # Redis: seconds per command
    write_deadline: float = 5.0        # Redis: a write not committed by then fails (RC 3, REST 503)
    max_reads_waiting: int = 16_384    # Redis: reads waiting on it at most, per process; past it RC 3 at once

    def redis_options(self):
        """How the Redis backend writes (registry.redis_keys.RedisOptions)."""
        from registry.redis_keys import RedisOptions
        replicas = self.replicas if self.replicas >= 0 else (1 if "+cluster://" in self.url else 0)
        return RedisOptions(replicas=replicas, replica_timeout=self.replica_timeout, timeout=self.timeout,
                            deadline=self.write_deadline, max_reads_waiting=self.max_reads_waiting)


@dataclass(frozen=True, slots=True)
class CacheSettings:
    enabled: bool = True
    max_entries: int = 2_000_000
    max_bytes: int = 1024 * 1024 * 1024
    max_negative_entries: int = 100_000
    max_ttl: float = 3600.0
    negative_ttl: float = 30.0
    stale_seconds: float = 300.0
    prefetch_seconds: float = 5.0
    prefetch_min_hits: int = 3


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """The node inside the national hierarchy (resolver/stages/upstream/README.md)."""
    recursion: bool = False            # resolve elsewhere for a client that sets REC (and may)
    roots: str = ""                    # top-level nodes HOST:PORT, comma-separated (TOML: a list too)
    allow_recursion_from: str = "127.0.0.0/8,::1/128"   # networks whose clients may have the node recurse
    transport: str = "tcp"             # how the node asks other nodes: "tcp" or "udp"
    timeout: float = 2.0               # seconds one upstream server has to answer
    deadline: float = 5.0              # seconds one recursive resolution may take in all
    max_hops: int = 8                  # servers one recursive resolution may ask
    max_pending: int = 256             # recursive resolutions under way at once, per process (RC 3 beyond)
    max_entries: int = 10_000          # upstream answers and prefix sites kept, each, per process
    breaker_failures: int = 3          # failures in a row after which a site is not asked ...
    breaker_seconds: float = 10.0      # ... for this long
    publish_to: str = ""               # the top-level node HOST:PORT this node keeps its prefixes' records at
    publish_as: str = ""               # the identity it publishes as (INDEX:HANDLE); empty: 300:<prefix>/ADMIN


@dataclass(frozen=True, slots=True)
class LogSettings:
    format: str = "text"
    level: str = "info"


@dataclass(frozen=True, slots=True)
class Settings:
    node: NodeSettings = field(default_factory=NodeSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    handle: HandleSettings = field(default_factory=HandleSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    log: LogSettings = field(default_factory=LogSettings)
    # The configuration file that was read (None: defaults, environment and
    # flags only). Where the settings came from, not a setting: not compared.
    source: Path | None = field(default=None, compare=False)

    @property
    def home(self) -> Path:
        return Path(self.node.home)


    def with_overrides(self, overrides: Mapping[str, Any]) -> "Settings":
        return _apply(self, overrides, "override")


@dataclass(frozen=True, slots=True)
class _Range:
    """The numbers a setting accepts: ``low..high``, or above ``low`` when
    ``low`` itself makes no sense (a timeout of 0)."""
    low: int | float
    high: int | float | None = None
    exclusive: bool = False

    def admits(self, value: int | float) -> bool:
        above = value > self.low if self.exclusive else value >= self.low
        return above and (self.high is None or value <= self.high)

    def __str__(self) -> str:
        if self.high is not None:
            return f"{self.low}..{self.high}"
        return f"more than {self.low}" if self.exclusive else f"at least {self.low}"


def _between(low: int, high: int) -> _Range:
    return _Range(low, high)


def _at_least(low: int | float) -> _Range:
    return _Range(low)


def _above(low: int | float) -> _Range:
    return _Range(low, exclusive=True)


_PORT = _between(0, 65535)          # 0: any free port
_SECONDS = _above(0)                # a duration where 0 makes no sense

# Every numeric setting and what it accepts (a new one without an entry gets
# _NOT_NEGATIVE; tests/test_settings.py asks for an entry).
_RANGES: dict[tuple[str, str], _Range] = {
    ("node", "workers"): _between(0, 256),             # 0: one per CPU
    ("http", "port"): _PORT,
    ("http", "max_body_bytes"): _at_least(1),
    ("http", "batch_max_items"): _at_least(1),
    ("http", "page_size"): _at_least(1),
    ("http", "header_timeout"): _SECONDS,
    ("http", "body_timeout"): _SECONDS,
    ("http", "keepalive_timeout"): _SECONDS,
    ("http", "send_timeout"): _SECONDS,
    ("http", "max_connections"): _at_least(1),
    ("http", "max_connections_per_source"): _at_least(0),    # 0: no bound (behind a proxy)
    ("http", "max_json_depth"): _between(8, 256),    # a value with an HS_ADMIN needs 5
    ("handle", "port"): _PORT,
    ("handle", "idle_timeout"): _SECONDS,
    ("handle", "max_message_bytes"): _at_least(64),     # an envelope and a header need more than that
    ("handle", "site_serial"): _between(0, 65535),      # 16 bits on the wire
    ("handle", "challenge_timeout"): _SECONDS,
    ("handle", "max_challenges"): _at_least(1),
    ("handle", "udp_timeout"): _SECONDS,
    ("handle", "max_udp_reply_bytes"): _at_least(512),  # one datagram always fits
    ("handle", "udp_rate"): _at_least(0),               # 0: no limit
    ("handle", "udp_burst"): _at_least(1),
    ("handle", "udp_slip"): _at_least(0),               # 0: drop every limited request
    ("handle", "udp_rate_sources"): _at_least(1),
    ("handle", "challenges_per_source"): _at_least(1),
    ("handle", "max_sessions"): _at_least(1),
    ("handle", "sessions_per_source"): _at_least(1),
    ("handle", "session_timeout"): _SECONDS,
    ("handle", "login_timeout"): _SECONDS,
    ("handle", "crypto_rate"): _at_least(0),            # 0: no limit
    ("handle", "crypto_burst"): _at_least(11),          # a (certified) session setup costs 11
    ("handle", "max_connections"): _at_least(1),
    ("handle", "max_connections_per_source"): _at_least(0),  # 0: no bound
    ("handle", "max_unread_bytes"): _at_least(4096),         # half of it is the largest write
    ("handle", "send_timeout"): _SECONDS,
    ("registry", "max_value_bytes"): _at_least(1),
    ("registry", "max_record_bytes"): _at_least(1),
    ("auth", "failure_delay"): _at_least(0),
    ("auth", "lockout_failures"): _at_least(1),         # 0 would lock everyone out
    ("auth", "lockout_seconds"): _SECONDS,
    ("store", "poll_interval"): _SECONDS,               # 0 would poll without pause
    ("store", "replicas"): _at_least(-1),
    ("store", "replica_timeout"): _SECONDS,
    ("store", "timeout"): _SECONDS,
    ("store", "write_deadline"): _SECONDS,
    ("store", "max_reads_waiting"): _at_least(1),
    ("cache", "max_entries"): _at_least(1),
    ("cache", "max_bytes"): _at_least(1),
    ("cache", "max_negative_entries"): _at_least(1),
    ("cache", "max_ttl"): _SECONDS,
    ("cache", "negative_ttl"): _at_least(0),
    ("cache", "stale_seconds"): _at_least(0),           # 0: never serve stale
    ("cache", "prefetch_seconds"): _at_least(0),        # 0: never prefetch
    ("cache", "prefetch_min_hits"): _at_least(1),
    ("upstream", "timeout"): _SECONDS,
    ("upstream", "deadline"): _SECONDS,
    ("upstream", "max_hops"): _between(1, 32),
    ("upstream", "max_pending"): _at_least(1),
    ("upstream", "max_entries"): _at_least(1),
    ("upstream", "breaker_failures"): _at_least(1),
    ("upstream", "breaker_seconds"): _SECONDS,
}
_NOT_NEGATIVE = _at_least(0)

_CHOICES = {
    ("log", "format"): {"text", "json"},
    ("log", "level"): {"debug", "info", "warning", "error"},
    ("upstream", "transport"): {"tcp", "udp"},
}

# Text settings that mean nothing empty (an empty http.bind would listen on
# every interface).
_NOT_EMPTY = {("node", "home"), ("node", "secondary_prefix"), ("http", "bind")}

# Text settings that list networks (``10.0.0.0/8,::1/128``; empty: none).
_NETWORKS = {("handle", "udp_rate_exempt"), ("upstream", "allow_recursion_from")}

# Text settings that list servers (``host:port,host:port``; TOML may give a
# list of strings; empty: none).
_SERVERS = {("upstream", "roots"), ("upstream", "publish_to")}


def servers(text: str) -> tuple[str, ...]:
    """The HOST:PORT items of a comma-separated list, read as the Handle
    client reads a server (``[v6]:PORT`` too), the port given (ValueError
    names a bad one)."""
    from .hs.client import parse_server          # the one HOST:PORT reader (it pulls in the client)
    out = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        _, port = parse_server(item)
        if not item.endswith(f":{port}"):
            raise ValueError(f"expected HOST:PORT, got {item!r}")
        out.append(item)
    return tuple(out)


def networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of a comma-separated list (ValueError names a bad one)."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())


def address_in(peer: str, nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    """Whether the address ``peer`` (an IPv4-mapped IPv6 one as its IPv4
    address) is in one of ``nets``; a peer that is not an address is in none."""
    try:
        ip = ipaddress.ip_address(peer.split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in nets if net.version == ip.version)


def _coerce(section: str, name: str, typ: Any, value: Any, origin: str) -> Any:
    where = f"{section}.{name} (from {origin})"
    try:
        if typ in (bool, "bool"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError
            return text in ("true", "1", "yes", "on")
        if isinstance(value, bool) and typ in (int, "int", float, "float"):
            raise ValueError
        if isinstance(value, list) and (section, name) in _SERVERS | _NETWORKS:
            if not all(isinstance(item, str) and "," not in item for item in value):
                raise ValueError
            value = ",".join(value)
        if typ in (int, "int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError          # 80.5 is not a port; int() would quietly make it 80
            out: Any = int(value)
        elif typ in (float, "float"):
            out = float(value)
        else:
            out = str(value)
    except (TypeError, ValueError, OverflowError):
        raise SettingsError(f"{where}: expected {typ}, got {value!r}") from None
    if isinstance(out, float) and not math.isfinite(out):
        raise SettingsError(f"{where}: must be a finite number, got {value!r}")
    if isinstance(out, (int, float)):
        allowed_range = _RANGES.get((section, name), _NOT_NEGATIVE)
        if not allowed_range.admits(out):
            raise SettingsError(f"{where}: must be {allowed_range}, got {out!r}")
        return out
    allowed = _CHOICES.get((section, name))
    if allowed and out not in allowed:
        raise SettingsError(f"{where}: must be one of {sorted(allowed)}, got {out!r}")
    if not out.strip() and (section, name) in _NOT_EMPTY:
        raise SettingsError(f"{where}: must not be empty")
    if (section, name) in _NETWORKS:
        try:
            networks(out)
        except ValueError as exc:
            raise SettingsError(f"{where}: not a list of networks: {exc}") from None
    if (section, name) in _SERVERS:
        try:
            servers(out)
        except ValueError as exc:
            raise SettingsError(f"{where}: not a list of servers: {exc}") from None
    return out


def _sections(settings: Settings) -> dict[str, Any]:
    """The [section] objects of ``settings`` (every field but ``source``)."""
    return {f.name: getattr(settings, f.name) for f in fields(settings) if f.name != "source"}


def _apply(settings: Settings, flat: Mapping[str, Any], origin: str) -> Settings:
    """Apply ``{"section.key": value}`` to a Settings object."""
    sections = _sections(settings)
    changes: dict[str, dict[str, Any]] = {}
    for dotted, value in flat.items():
        if value is None:
            continue
        section, _, name = dotted.partition(".")
        sec = sections.get(section)
        if sec is None or name not in {f.name for f in fields(sec)}:
            raise SettingsError(f"unknown setting {dotted!r} (from {origin})")
        typ = next(f.type for f in fields(sec) if f.name == name)
        changes.setdefault(section, {})[name] = _coerce(section, name, typ, value, origin)
    new = {s: dataclasses.replace(sections[s], **c) for s, c in changes.items()}
    return dataclasses.replace(settings, **new)


def _flatten_toml(data: Mapping[str, Any], origin: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise SettingsError(f"{origin}: top-level key {section!r} must be a [section]")
        for key, value in table.items():
            flat[f"{section}.{key}"] = value
    return flat


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, defaults in _sections(Settings()).items():
        for f in fields(defaults):
            name = f"IDNODE_{section}_{f.name}".upper()
            if name in env:
                flat[f"{section}.{f.name}"] = env[name]
    if "IDNODE_HOME" in env:
        flat["node.home"] = env["IDNODE_HOME"]
    if "IDNODE_STORE" in env:                       # short for IDNODE_STORE_URL
        flat["store.url"] = env["IDNODE_STORE"]
    return flat


CONFIG_NAME = "idnode.toml"                          # looked for in the node's home
FALLBACK_CONFIG = Path("config") / CONFIG_NAME       # then in the current directory


def find_config(config_file: str | os.PathLike | None, env: Mapping[str, str],
                overrides: Mapping[str, Any] | None = None) -> Path | None:
    """The configuration file to read, the first of:

    1. ``config_file`` (``--config FILE``), then ``IDNODE_CONFIG``: read, so
       a missing one is an error;
    2. ``<home>/idnode.toml``, the home being the flags' or the
       environment's (``--home``, ``IDNODE_HOME``), else ``./var``;
    3. ``config/idnode.toml`` under the current directory;

    the last two only if they exist. None: no file, defaults only.
    """
    explicit = config_file or env.get("IDNODE_CONFIG")
    if explicit:
        return Path(explicit)
    home = (overrides or {}).get("node.home") or _from_env(env).get("node.home") or NodeSettings().home
    for candidate in (Path(home) / CONFIG_NAME, FALLBACK_CONFIG):
        if os.path.isfile(candidate):
            return candidate
    return None


def load_settings(config_file: str | os.PathLike | None = None,
                  env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build the one Settings object: file (see :func:`find_config`) ->
    environment -> overrides. ``source`` names the file read, if any."""
    env = os.environ if env is None else env
    settings = Settings()
    path = find_config(config_file, env, overrides)
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path}: {exc}") from None
        settings = _apply(settings, _flatten_toml(data, str(path)), str(path))
        settings = dataclasses.replace(settings, source=path)
    settings = _apply(settings, _from_env(env), "environment")
    if overrides:
        settings = _apply(settings, overrides, "command line")
    return settings

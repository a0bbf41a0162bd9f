"""Realistic benchmark records and the key sets scenarios draw from.

Record ``i`` is a pure function of ``i``: the harness seeds the node with
records 0..N-1, the load generators ask for the same handles, and the import
scenario writes the same rows to a file, without passing N records around.

A record has 4 to 8 public values whose types and data add up to 300-600
bytes, the shape of a product or order label on an industrial identifier
node: a URL, a contact, a product name, a description, and some of batch,
date, specification and certificate. Handles are spread over several
enterprise prefixes under the node's secondary prefix.

That is the ``large`` kind of record (the default). ``idnode bench --records``
also offers ``small`` records, a URL (index 1) and an HS_ADMIN (index 100)
naming ``300:<prefix>/ADMIN`` with every permission, whose UDP reply is one
datagram, and ``mixed``: record ``i`` small when ``_mix(i) % 10 < 7``, else
large (70% small), again a pure function of ``i``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator, Sequence

from protocol.valuetypes import AdminRef
from protocol.values import HandleValue

SECONDARY_PREFIX = "88.118"
# (prefix, owner): several enterprises of different sizes of prefix.
ENTERPRISES: tuple[tuple[str, str], ...] = (
    ("88.118.8", "Acme Manufacturing Co., Ltd."),
    ("88.118.12", "Huadong Precision Parts"),
    ("88.118.1001", "Lingang Battery Systems"),
    ("88.118.20450", "Xinan Pharmaceutical Group"),
    ("88.118.3", "Beifang Steel Logistics"),
)
PREFIXES = tuple(p for p, _ in ENTERPRISES)
_KINDS = ("SN", "PO", "LOT", "PART")
_DOMAINS = ("acme.example", "hdparts.example", "lgbattery.example", "xnpharma.example", "bfsteel.example")
MIN_BYTES, MAX_BYTES = 300, 600
RECORD_KINDS = ("small", "mixed", "large")
DEFAULT_KIND = "large"
SMALL_PERCENT = 70                 # mixed: share of small records
ADMIN_INDEX, ADMIN_KEY_INDEX = 100, 300
# Value columns, in index order; the first four are in every record.
COLUMNS = ("URL", "EMAIL", "PRODUCT_NAME", "DESC", "BATCH_NO", "MFG_DATE", "SPEC", "CERT_URL")
_FILLER = ("Rated for continuous duty; inspect seals every 2000 hours; store dry between 5 and 35 C; "
           "traceable to raw material heat number and supplier lot; RoHS and REACH declarations on file. ")


def _mix(i: int) -> int:
    """A cheap, well-spread 32-bit hash of ``i`` (no Random object per record)."""
    x = (i * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    x ^= x >> 12
    return x


def handle_of(i: int) -> str:
    """The handle of record ``i`` (e.g. ``88.118.1001/LOT-00012345``)."""
    p = len(PREFIXES)
    return f"{PREFIXES[i % p]}/{_KINDS[(i // p) % len(_KINDS)]}-{i:08d}"


def missing_handle(j: int) -> str:
    """A handle under an allocated prefix that no record uses."""
    return f"{PREFIXES[j % len(PREFIXES)]}/NX-{j:08d}"


def new_handle(tag: str, j: int) -> str:
    """A handle for registration scenarios, distinct per run ``tag``."""
    return f"{PREFIXES[j % len(PREFIXES)]}/REG-{tag}-{j:08d}"


def record_columns(i: int) -> dict[str, str]:
    """The values of record ``i`` as ``{type: text}``, in index order."""
    h = _mix(i)
    p = i % len(PREFIXES)
    suffix = handle_of(i).split("/", 1)[1]
    domain = _DOMAINS[p]
    extra = (h >> 8) % 5                                   # 0..4 optional values: 4 to 8 in all
    cols = {
        "URL": f"https://{domain}/trace/{suffix}",
        "EMAIL": f"quality{p}@{domain}",
        "PRODUCT_NAME": f"{('Hydraulic valve', 'Servo drive', 'Cell module', 'API batch', 'Coil')[p]} "
                        f"model {h % 900 + 100}-{(h >> 4) % 26 + 10:d}",
        "DESC": "",
    }
    optional = (("BATCH_NO", f"B{(h >> 3) % 100000:05d}-{i % 97:02d}"),
                ("MFG_DATE", f"2026-{(h >> 5) % 12 + 1:02d}-{(h >> 9) % 28 + 1:02d}"),
                ("SPEC", f'{{"mass_kg": {(h % 5000) / 100:.2f}, "grade": "{"ABCD"[(h >> 2) % 4]}", '
                         f'"std": "GB/T {(h >> 6) % 30000 + 1000}-2019"}}'),
                ("CERT_URL", f"https://{domain}/cert/{(h >> 7) % 10**8:08d}.pdf"))
    for name, text in optional[:extra]:
        cols[name] = text
    target = MIN_BYTES + (h >> 16) % (MAX_BYTES - MIN_BYTES + 1)
    used = sum(len(t) + len(v) for t, v in cols.items())
    room = max(12, target - used)
    start = h % len(_FILLER)
    filler = (_FILLER * (2 + room // len(_FILLER)))[start:start + room]
    cols["DESC"] = filler.strip().ljust(room, ".")
    return cols


def check_kind(kind: str) -> str:
    if kind not in RECORD_KINDS:
        raise ValueError(f"records must be one of {', '.join(RECORD_KINDS)}, not {kind!r}")
    return kind


def is_small(i: int, kind: str = DEFAULT_KIND) -> bool:
    """Whether record ``i`` is a small one among records of ``kind``."""
    if kind == "mixed":
        return _mix(i) % 10 < SMALL_PERCENT // 10
    return check_kind(kind) == "small"


def small_values(i: int) -> list[HandleValue]:
    """The small shape of record ``i``: its URL and an HS_ADMIN naming its prefix's admin."""
    prefix = handle_of(i).split("/", 1)[0]
    return [HandleValue(1, "URL", record_columns(i)["URL"].encode()),
            HandleValue(ADMIN_INDEX, "HS_ADMIN", AdminRef(f"{prefix}/ADMIN", ADMIN_KEY_INDEX).encode())]


def record_values(i: int, kind: str = DEFAULT_KIND) -> list[HandleValue]:
    """Record ``i`` as handle values: large, indexes 1.. in column order; small, see :func:`small_values`."""
    if is_small(i, kind):
        return small_values(i)
    return [HandleValue(n, t, v.encode()) for n, (t, v) in enumerate(record_columns(i).items(), 1)]


def payload_bytes(i: int, kind: str = DEFAULT_KIND) -> int:
    """Types plus data of record ``i`` (large: the 300-600 bytes the issue asks for)."""
    if is_small(i, kind):
        return sum(len(v.type) + len(v.data) for v in small_values(i))
    return sum(len(t) + len(v.encode()) for t, v in record_columns(i).items())


def csv_rows(n: int) -> Iterator[list[str]]:
    """The header and ``n`` rows of the import file (``idnode import`` CSV)."""
    yield ["handle", "url", *COLUMNS[1:]]
    for i in range(n):
        cols = record_columns(i)
        yield [handle_of(i), *(cols.get(c, "") for c in COLUMNS)]


def jsonl_lines(n: int, kind: str) -> Iterator[bytes]:
    """The import file for ``small`` and ``mixed`` records (``idnode import`` JSONL,
    Handle.Net JSON values), since a CSV column cannot carry an HS_ADMIN value."""
    import orjson

    from protocol.jsoncodec import value_to_json

    for i in range(n):
        values = [value_to_json(v) for v in record_values(i, kind)]
        yield orjson.dumps({"handle": handle_of(i), "values": values}) + b"\n"


# ------------------------------------------------------------------ key sets

@dataclass(frozen=True, slots=True)
class KeySet:
    """Which handles a scenario asks for, in order (generators cycle through them)."""
    name: str
    handles: tuple[str, ...]
    found: bool            # whether every handle exists on the node
    distinct: int          # distinct handles among them
    note: str


def hot_keys(n: int, count: int, *, seed: int = 1) -> KeySet:
    """A small set of popular handles asked again and again."""
    count = max(1, min(n, count))
    rng = random.Random(seed)
    idx = rng.sample(range(n), count)
    return KeySet("hot", tuple(handle_of(i) for i in idx), True, count,
                  f"{count} handles asked repeatedly")


def cold_keys(n: int, cap: int, *, seed: int = 2) -> KeySet:
    """Handles uniform over all N (all of them, shuffled, when N <= cap)."""
    rng = random.Random(seed)
    if n <= cap:
        idx: Sequence[int] = rng.sample(range(n), n)
        note = f"all {n} handles, shuffled"
    else:
        idx = [rng.randrange(n) for _ in range(cap)]
        note = f"{cap} draws uniform over {n}"
    return KeySet("cold", tuple(handle_of(i) for i in idx), True, len(set(idx)), note)


def missing_keys(count: int) -> KeySet:
    return KeySet("notfound", tuple(missing_handle(j) for j in range(count)), False, count,
                  f"{count} handles under allocated prefixes that do not exist")


def zipf_keys(n: int, cap: int, s: float = 1.1, *, seed: int = 3) -> KeySet:
    """``cap`` draws with P(rank k) ~ 1 / k**s over all N; ranks map to a
    random permutation of the records so popular ones are spread out."""
    rng = random.Random(seed)
    cum, total = [], 0.0
    for k in range(1, n + 1):
        total += k ** -s
        cum.append(total)
    ranks = rng.choices(range(n), cum_weights=cum, k=cap)
    order = list(range(n))
    rng.shuffle(order)
    idx = [order[r] for r in ranks]
    return KeySet("zipf", tuple(handle_of(i) for i in idx), True, len(set(idx)),
                  f"{cap} draws, Zipf s={s} over {n}")

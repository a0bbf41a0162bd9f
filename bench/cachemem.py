"""Resident memory per cached identifier: fill the cache, read RSS.

``python -m bench.cachemem [--entries 1000000] [--rest] [--records small|mixed|large]``
fills a cache with the harness's records (large by default: 4 to 8 values,
300-600 bytes), as the registry hands them out, and prints the growth of the
process's resident memory per entry, and that growth beyond the bytes of the
entry's encoded Handle answer. With ``--rest`` every entry also holds its
REST answer (a node that answers both protocols); without, only the Handle
protocol answer.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

from registry.codec import decode_values, encode_values, ready_values
from registry.model import HandleRecord
from resolver import rest as rest_front
from resolver.cache import Cache, Entry, record_ttl
from resolver.hs import service as hs
from resolver.settings import CacheSettings
from resolver.shared import SharedState

from .records import DEFAULT_KIND, RECORD_KINDS, handle_of, record_values


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(entries: int, rest: bool, kind: str = "large") -> dict:
    shared = SharedState.private()
    cache = Cache(CacheSettings(max_entries=entries + 1, max_bytes=1 << 50), time.monotonic, shared.stamps)
    payload = values = answer = 0
    gc.collect()
    base = rss_bytes()
    for i in range(entries):
        handle = handle_of(i)
        values_i = decode_values(encode_values(record_values(i, kind)))
        payload += sum(len(v.data) + len(v.type) for v in values_i)
        values += len(values_i)
        record = HandleRecord.stored(handle, encode_values(values_i), ready=ready_values(values_i))   # as read
        entry = cache.store(Entry(handle.lower(), record), record_ttl(record, time.time(), 3600.0))   # as the stage
        answer += hs.memoised(cache, entry)[2]       # what the front ends keep of an entry: its body's bytes
        if rest:
            rest_front.memoised(cache, entry, handle)
    gc.collect()
    rss = (rss_bytes() - base) / entries
    return {"entries": entries, "rest": rest, "records": kind, "rss_per_entry": rss,
            "answer_per_entry": answer / entries, "beyond_answer": rss - answer / entries,
            "payload_per_record": payload / entries, "values_per_record": values / entries,
            "estimate_per_entry": cache.bytes / entries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rest", action="store_true", help="also keep each entry's REST answer")
    parser.add_argument("--records", choices=RECORD_KINDS, default=DEFAULT_KIND)
    args = parser.parse_args()
    r = measure(args.entries, args.rest, args.records)
    print(f"{r['entries']:,} entries, {r['records']} records ({'Handle + REST' if r['rest'] else 'Handle'} "
          f"answers): {r['rss_per_entry']:.0f} B of RSS per entry, {r['beyond_answer']:.0f} B beyond its "
          f"{r['answer_per_entry']:.0f} B Handle answer; records hold {r['values_per_record']:.1f} values, "
          f"{r['payload_per_record']:.0f} B of types and data; the cache's own estimate "
          f"{r['estimate_per_entry']:.0f} B")


if __name__ == "__main__":
    main()

"""Resident memory per cached identifier: fill the cache, read RSS.

``python -m bench.cachemem [--entries 1000000] [--rest]`` fills a cache with
the harness's realistic records (4 to 8 values, 300-600 bytes), as the
registry hands them out, and prints the growth of the process's resident
memory per entry. With ``--rest`` every entry also holds its REST answer (a
node that answers both protocols); without, only the Handle protocol answer.
"""

from __future__ import annotations

import argparse
import gc
import os
import time

from registry.codec import decode_values, encode_values
from registry.model import HandleRecord
from resolver import rest as rest_front
from resolver.cache import Cache, Entry, record_ttl
from resolver.hs import service as hs
from resolver.settings import CacheSettings
from resolver.shared import SharedState

from .records import handle_of, record_values


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(entries: int, rest: bool) -> dict:
    shared = SharedState.private()
    cache = Cache(CacheSettings(max_entries=entries + 1, max_bytes=1 << 50), time.monotonic, shared.stamps)
    payload = values = 0
    gc.collect()
    base = rss_bytes()
    for i in range(entries):
        handle = handle_of(i)
        values_i = decode_values(encode_values(record_values(i)))
        payload += sum(len(v.data) + len(v.type) for v in values_i)
        values += len(values_i)
        record = HandleRecord.stored(handle, encode_values(values_i))     # as the registry hands it out
        entry = cache.store(Entry(handle.lower(), record), record_ttl(record, time.time(), 3600.0))   # as the stage
        hs.memoised(cache, entry)                    # what the front ends keep of an entry
        if rest:
            rest_front.memoised(cache, entry, handle)
    gc.collect()
    return {"entries": entries, "rest": rest, "rss_per_entry": (rss_bytes() - base) / entries,
            "payload_per_record": payload / entries, "values_per_record": values / entries,
            "estimate_per_entry": cache.bytes / entries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rest", action="store_true", help="also keep each entry's REST answer")
    args = parser.parse_args()
    r = measure(args.entries, args.rest)
    print(f"{r['entries']:,} entries ({'Handle + REST' if r['rest'] else 'Handle'} answers): "
          f"{r['rss_per_entry']:.0f} B of RSS per entry; records hold {r['values_per_record']:.1f} values, "
          f"{r['payload_per_record']:.0f} B of types and data; the cache's own estimate "
          f"{r['estimate_per_entry']:.0f} B")


if __name__ == "__main__":
    main()

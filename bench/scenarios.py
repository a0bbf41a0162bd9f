"""The scenario table and how names on the command line select from it.

Resolution scenarios are ``<protocol>-<keys>``: protocols ``hs-udp``,
``hs-tcp`` (Handle binary protocol), ``rest`` (``GET /api/handles/{h}``),
``cbor`` (``POST /api/batch/resolve`` in CBOR); key sets ``hot`` (a small
set asked again and again: every identifier cached once a cache exists),
``cold`` (uniform over all N with the node's cache turned off), ``notfound``
and ``zipf`` (s = 1.1 over all N). ``<protocol>-hot-open`` runs open loop at
fixed fractions of the closed-loop maximum. ``register-single``,
``register-batch`` and ``import`` measure writes; ``mixed-two`` reads and
writes through two node instances sharing the store (the Redis ones: each
instance's cache learns of the other's writes from the change feed).

A word on the command line selects every scenario it names or tags:
``idnode bench hot`` runs every hot scenario, ``idnode bench hs-udp`` every
HS-over-UDP one, ``idnode bench rest-cold import`` those two.
"""

from __future__ import annotations

from dataclasses import dataclass

PROTOCOLS = ("hs-udp", "hs-tcp", "rest", "cbor")
KEYSETS = ("hot", "cold", "notfound", "zipf")
OPEN_PROTOCOLS = ("hs-udp", "hs-tcp", "rest")
HS_PROTOCOLS = frozenset({"hs-udp", "hs-tcp"})


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    kind: str                      # "resolve" | "open" | "register" | "import"
    protocol: str                  # hs-udp, hs-tcp, rest, cbor; register: rest-put, cbor-batch; import: cli
    keys: str = ""                 # hot, cold, notfound, zipf
    cache: bool = True             # the node's cache on (cold: off)
    tags: frozenset[str] = frozenset()
    doc: str = ""

    @property
    def needs_node(self) -> bool:
        return self.kind != "import"

    @property
    def needs_hs(self) -> bool:
        return self.protocol in HS_PROTOCOLS

    @property
    def closed_twin(self) -> str:
        """The closed-loop scenario an open-loop one takes its maximum from."""
        return self.name.removesuffix("-open")


_DOCS = {
    "hs-udp": "Handle protocol over UDP, many requests in flight",
    "hs-tcp": "Handle protocol over TCP, one request in flight per connection",
    "rest": "REST GET /api/handles/{handle}, HTTP/1.1 keep-alive",
    "cbor": "POST /api/batch/resolve in CBOR, many handles per request",
    "hot": "a small set of handles asked repeatedly (cache on)",
    "cold": "handles uniform over all N, the node's cache off",
    "notfound": "handles that do not exist (cache on)",
    "zipf": "Zipf s=1.1 over all N (cache on)",
}


def _table() -> tuple[Scenario, ...]:
    out = []
    for proto in PROTOCOLS:
        for keys in KEYSETS:
            out.append(Scenario(f"{proto}-{keys}", "resolve", proto, keys, keys != "cold",
                                frozenset({proto, keys, "resolve", "all"}), f"{_DOCS[proto]}; {_DOCS[keys]}"))
    for proto in OPEN_PROTOCOLS:
        out.append(Scenario(f"{proto}-hot-open", "open", proto, "hot", True,
                            frozenset({proto, "hot", "open", "all"}),
                            f"{_DOCS[proto]}; hot; open loop at fractions of the closed-loop maximum"))
    out.append(Scenario("register-single", "register", "rest-put", "", True,
                        frozenset({"register", "write", "all"}), "PUT /api/handles/{new handle}, one per request"))
    out.append(Scenario("register-batch", "register", "cbor-batch", "", True,
                        frozenset({"register", "write", "all"}), "POST /api/batch/register in CBOR, many per request"))
    out.append(Scenario("mixed-two", "mixed", "rest", "zipf", True, frozenset({"mixed", "write", "rest", "all"}),
                        "two node instances on one store, each given half the connections: REST GETs (Zipf "
                        "over all N) with one PUT replacing an existing record (uniform over all N) in every ten "
                        "requests"))
    out.append(Scenario("import", "import", "cli", "", True, frozenset({"import", "write", "all"}),
                        "`idnode import` of N CSV rows into a fresh embedded store"))
    return tuple(out)


SCENARIOS: tuple[Scenario, ...] = _table()
BY_NAME = {s.name: s for s in SCENARIOS}


class UnknownScenario(ValueError):
    """A word on the command line names no scenario or tag."""


def select(words: list[str] | tuple[str, ...]) -> list[Scenario]:
    """The scenarios the words name or tag, in table order; all when none."""
    if not words:
        return list(SCENARIOS)
    wanted: set[str] = set()
    for word in words:
        w = word.lower()
        hits = {s.name for s in SCENARIOS if s.name == w or w in s.tags}
        if not hits:
            tags = sorted({t for s in SCENARIOS for t in s.tags})
            raise UnknownScenario(f"unknown scenario {word!r}; scenarios: {', '.join(BY_NAME)}; "
                                  f"tags: {', '.join(tags)}")
        wanted |= hits
    return [s for s in SCENARIOS if s.name in wanted]

"""Metrics of the Handle protocol servers, children looked up once.

Requests go to the node's ``idnode_requests_total`` and
``idnode_request_duration_seconds`` with protocol ``hs-tcp``, ``hs-udp`` or
``hs-http`` and the opCode's name as the operation (``other`` for opCodes
this node does not serve); input that is not a request at all is counted in
``idnode_hs_malformed_total{protocol}``; requests a transport dropped without
an answer in ``idnode_requests_dropped_total{protocol, reason}`` (reasons:
``busy``, too many requests in progress; ``reassembly``, a multi-packet UDP
request with no room or that never completed; ``rate_limit``, past its
source prefix's UDP rate; ``shed``, a miss waiting for a registry read
pushed out of a full queue by newer ones); rate-limited UDP requests answered with the
small refusal instead in ``idnode_hs_udp_slipped_total``. Pending
authentication challenges are ``idnode_hs_challenges_pending{pool}`` (``udp``,
``connection``); the challenges forgotten to make room,
``idnode_hs_challenges_evicted_total{reason}`` (``source``: the source
prefix's share was full; ``pool``: the pool was; ``replaced``: a newer
challenge in the same session). Sessions this worker set up are
``idnode_hs_sessions`` and those ended to make room
``idnode_hs_sessions_evicted_total{reason}`` (``source``, ``full``);
connections logged in (IDIS login) ``idnode_hs_logins``; replies signed with
the server key ``idnode_hs_signed_replies_total``, and the certified
requests and session setups refused because their source prefix spent its
public-key work budget (``handle.crypto_rate``) ``idnode_hs_work_refused_total``. Failed authentications are
counted by the operations layer, in ``idnode_auth_failures_total{protocol}``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from protocol.handle import OpCode

from ..metrics import Metrics, RequestMetrics

TRANSPORTS = ("tcp", "udp", "http")
DROP_REASONS = ("busy", "reassembly", "rate_limit", "shed")
SERVED = (OpCode.RESOLUTION, OpCode.GET_SITE_INFO, OpCode.CREATE_HANDLE, OpCode.DELETE_HANDLE, OpCode.ADD_VALUE,
          OpCode.REMOVE_VALUE, OpCode.MODIFY_VALUE, OpCode.LIST_HANDLES, OpCode.CHALLENGE_RESPONSE,
          OpCode.SESSION_SETUP, OpCode.SESSION_TERMINATE, OpCode.SESSION_EXCHANGE_KEY, OpCode.LOGIN_PASSWORD,
          OpCode.LOGIN_KEY)


class HsMetrics:
    """One per node's Metrics (it registers the malformed-message counter)."""

    def __init__(self, metrics: Metrics):
        malformed = Counter("idnode_hs_malformed_total", "Handle protocol input dropped or answered RC 4.",
                            ("protocol",), registry=metrics.registry)
        self.slipped = Counter("idnode_hs_udp_slipped_total",
                               "UDP requests past their source's rate answered with a small RC 2 refusal.",
                               registry=metrics.registry)
        pending = Gauge("idnode_hs_challenges_pending", "Authentication challenges waiting for an answer, by pool.",
                        ("pool",), registry=metrics.registry, multiprocess_mode="livesum")
        self._pending = {True: pending.labels("udp"), False: pending.labels("connection")}
        evicted = Counter("idnode_hs_challenges_evicted_total",
                          "Pending challenges forgotten to make room, by the bound that was full.",
                          ("reason",), registry=metrics.registry)
        self._evicted = {reason: evicted.labels(reason) for reason in ("source", "pool", "replaced")}
        sessions = Gauge("idnode_hs_sessions", "Handle sessions set up by this node and not yet ended.",
                         registry=metrics.registry, multiprocess_mode="livesum")
        self.sessions = sessions.set
        ended = Counter("idnode_hs_sessions_evicted_total", "Handle sessions ended early to make room, by bound.",
                        ("reason",), registry=metrics.registry)
        self._sessions_evicted = {reason: ended.labels(reason) for reason in ("source", "full")}
        self.logins = Gauge("idnode_hs_logins", "TCP connections logged in (IDIS login), open now.",
                            registry=metrics.registry, multiprocess_mode="livesum")
        self.signed = Counter("idnode_hs_signed_replies_total", "Replies signed with the server key (CT requests).",
                              registry=metrics.registry)
        self.overworked = Counter("idnode_hs_work_refused_total",
                                  "Certified requests and session setups refused (RC 3): the source prefix's "
                                  "public-key work budget was spent.", registry=metrics.registry)
        self._ops: dict[tuple[str, int], RequestMetrics] = {}
        self._other: dict[str, RequestMetrics] = {}
        self._malformed = {}
        self._dropped = {}
        for transport in TRANSPORTS:
            label = f"hs-{transport}"
            for op in SERVED:
                self._ops[(transport, int(op))] = metrics.op(label, op.name.lower())
            self._other[transport] = metrics.op(label, "other")
            self._malformed[transport] = malformed.labels(label)
            for reason in DROP_REASONS:
                self._dropped[(transport, reason)] = metrics.dropped.labels(label, reason)

    def op(self, transport: str, op_code: int) -> RequestMetrics:
        found = self._ops.get((transport, op_code))
        return found if found is not None else self._other[transport]

    def pending(self, udp: bool, count: int) -> None:
        self._pending[udp].set(count)

    def evicted(self, reason: str) -> None:
        self._evicted[reason].inc()

    def session_evicted(self, reason: str) -> None:
        self._sessions_evicted[reason].inc()

    def malformed(self, transport: str):
        return self._malformed[transport]

    def dropped(self, transport: str, reason: str):
        return self._dropped[(transport, reason)]

"""Metrics of the Handle protocol servers, children looked up once.

Requests go to the node's ``idnode_requests_total`` and
``idnode_request_duration_seconds`` with protocol ``hs-tcp``, ``hs-udp`` or
``hs-http`` and the opCode's name as the operation (``other`` for opCodes
this node does not serve); input that is not a request at all is counted in
``idnode_hs_malformed_total{protocol}``; requests a transport dropped without
an answer in ``idnode_requests_dropped_total{protocol, reason}`` (reasons:
``busy``, too many requests in progress; ``reassembly``, a multi-packet UDP
request with no room or that never completed). Failed authentications are
counted by the operations layer, in ``idnode_auth_failures_total{protocol}``.
"""

from __future__ import annotations

from prometheus_client import Counter

from protocol.handle import OpCode

from ..metrics import Metrics, RequestMetrics

TRANSPORTS = ("tcp", "udp", "http")
DROP_REASONS = ("busy", "reassembly")
SERVED = (OpCode.RESOLUTION, OpCode.GET_SITE_INFO, OpCode.CREATE_HANDLE, OpCode.DELETE_HANDLE, OpCode.ADD_VALUE,
          OpCode.REMOVE_VALUE, OpCode.MODIFY_VALUE, OpCode.LIST_HANDLES, OpCode.CHALLENGE_RESPONSE)


class HsMetrics:
    """One per node's Metrics (it registers the malformed-message counter)."""

    def __init__(self, metrics: Metrics):
        malformed = Counter("idnode_hs_malformed_total", "Handle protocol input dropped or answered RC 4.",
                            ("protocol",), registry=metrics.registry)
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

    def malformed(self, transport: str):
        return self._malformed[transport]

    def dropped(self, transport: str, reason: str):
        return self._dropped[(transport, reason)]

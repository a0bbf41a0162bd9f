"""The Handle binary protocol front end: the service decides, the transports
move bytes, the operations layer (:mod:`resolver.core`) rules.

* :mod:`.service`     the one entry point (bytes, peer, transport in; replies
  out) with its fast, plain and full tiers: resolution, get site info,
  administration with challenge-response;
* :mod:`.admin`       which administration request maps to which operation;
* :mod:`.auth`        pending challenges (answers are checked by the core);
* :mod:`.site`        this node's HS_SITE;
* :mod:`.tcp`, :mod:`.udp`, :mod:`.http`, :mod:`.listeners`  the transports;
* :mod:`.metrics`     request, malformed-input and dropped-request metrics;
* :mod:`.client`      an async client over TCP, UDP and HTTP (``idnode resolve --hs``).
"""

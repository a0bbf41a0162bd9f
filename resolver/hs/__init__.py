"""The Handle binary protocol served by the node: thin asyncio adapters around
the sans-I/O codec in :mod:`protocol.handle`.

* :mod:`.service`     the transport-independent handler (bytes in, replies out):
  resolution, get site info, administration with challenge-response;
* :mod:`.operations`  what each request does to the registry;
* :mod:`.auth`        pending challenges, answer checks, failure slow-down;
* :mod:`.permissions` identities, scopes and HS_ADMIN permissions;
* :mod:`.site`        this node's HS_SITE;
* :mod:`.tcp`, :mod:`.udp`, :mod:`.http`, :mod:`.listeners`  the transports;
* :mod:`.metrics`     request, malformed-input and auth-failure metrics;
* :mod:`.client`      an async client over TCP, UDP and HTTP (``idnode resolve --hs``).
"""

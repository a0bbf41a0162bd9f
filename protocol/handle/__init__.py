"""Sans-I/O codec of the Handle binary protocol (RFC 3651/3652, Handle.Net 9).

Bytes in, messages out, and back: no sockets, no asyncio, no clock. Where
time matters (reply expiration, expired replies, UDP reassembly deadlines)
the caller passes ``now``. Transports (TCP, UDP, HTTP) are thin adapters
written on top of this package.

Reading a request (server side)::

    from protocol.handle import Envelope, decode_message, HandleProtocolError, ENVELOPE_SIZE

    env = Envelope.from_bytes(first_20_bytes, limits)        # TCP: learn the length first
    msg = decode_message(env, next_message_length_bytes, limits)
    # or, with envelope + message in one buffer (HTTP body, UDP datagram):
    msg = decode(data, limits)

    msg.op_code            # OpCode.RESOLUTION ...   (unknown codes kept: OpCode.UNKNOWN_n)
    msg.version            # (2, 3): the request's own envelope version
    msg.envelope           # version, suggested version, session/request id, flags
    msg.header             # opCode, responseCode, opFlags (OpFlag, unknown bits kept), expiration ...
    msg.body               # ResolutionRequest(handle, indexes, types), ...

Every malformed or over-limit input raises :class:`HandleProtocolError`
(a ``protocol.wire.WireError``) and nothing else; it carries ``request_id``,
``envelope`` and ``op_code`` as far as they could be read, and
:func:`protocol_error_reply` turns it into the RC 4 answer (or None when not
even the envelope was readable). :class:`Limits` bounds message size (256 KiB
by default), handle length (255 bytes), index/type list lengths, value counts.

Answering::

    reply = make_reply(msg, ResolutionResponse(handle, values), now=int(time.time()))
    wire = encode(reply)                       # envelope + message
    for datagram in split_datagrams(wire): ... # UDP only

``make_reply`` answers in the request's version (2.1 to 2.11), echoes its
request and session ids, carries over its AT/CT/ENC/REC/CA/PO/DNRF opFlags,
adds the request digest when the request set RD (and always to a
:class:`Challenge`), and sets the expiration to ``now + lifetime``.
Response codes are ``protocol.codes.RC`` (an unknown code stays a plain int);
the body class follows from (opCode, responseCode): see :func:`body_type`.

Bodies (immutable slotted dataclasses, ``to_bytes()`` / ``Cls.from_bytes()``):
:class:`ResolutionRequest`/:class:`ResolutionResponse`,
:class:`GetSiteInfoRequest`/:class:`GetSiteInfoResponse` (raw HS_SITE record;
typed by ``protocol.valuetypes.SiteInfo``), :class:`ErrorResponse`,
:class:`ReferralResponse`, :class:`CreateHandleRequest`/:class:`CreateHandleResponse`,
:class:`DeleteHandleRequest`, :class:`AddValueRequest`, :class:`RemoveValueRequest`,
:class:`ModifyValueRequest`, :class:`ListHandlesRequest`/:class:`ListHandlesResponse`,
:class:`GenericRequest`, :class:`EmptyResponse`, :class:`Challenge` (RC 402),
:class:`ChallengeAnswerRequest` (opCode 200), :class:`VerifyChallengeRequest` /
:class:`VerifyChallengeResponse` (opCode 201), :class:`RawBody` (anything not
interpreted, byte for byte). Handle values use ``protocol.values.HandleValue``
(:func:`encode_value` / :func:`decode_value`). The request digest of a
response is ``Message.request_digest`` (:class:`RequestDigest`); the
credential after the body is :class:`Credential`.

Sessions (opCodes 400/401/402) and IDIS login (2000/2001): bodies
:class:`SessionSetupRequest`/:class:`SessionSetupResponse` (mode
:class:`KeyExchange`, Handle.Net's two trailing zero bytes kept as
``padding``), :class:`SessionExchangeKeyRequest` (402),
:class:`LoginRequest` (2001, key login) and :class:`PasswordLoginRequest`
(2000, the CAICT SDK's password login); 401 is a :class:`GenericRequest`;
401, 402 and 2001 succeed with an :class:`EmptyResponse`, 2000 with a
:class:`ResolutionResponse` naming the identity. Key agreement and session encryption are in
:mod:`protocol.handle.sessioncrypto` (:func:`dh_server_exchange`,
:func:`dh_client_keypair`/:func:`dh_client_session_key` with the Oakley
group 2 default, :func:`rsa_encrypt_session_key`/
:func:`rsa_decrypt_session_key` with :func:`pack_session_key`/
:func:`unpack_session_key`, :func:`new_session_key`,
:func:`encrypt_message`/:func:`decrypt_message` and, for whole envelope +
message buffers, :func:`encrypt_wire`/:func:`decrypt_wire`, cipher
:class:`SessionCipher`; it re-exports the two modules below); credentials
in :mod:`protocol.handle.signing` (:func:`mac_credential`/:func:`verify_mac`
for HS_MAC with the session key, :func:`sign`/:func:`verify_signature` for
the server's HS_SIGNED); Handle's
public key encoding in :mod:`protocol.handle.keys` (:func:`public_key_bytes`,
:func:`load_public_key`, :class:`DHPublicKey`).

Authentication: :func:`secret_key_answer` / :func:`verify_secret_key_answer`
compute an HS_SECKEY answer both ways (plain SHA-1 MAC before 2.7,
PBKDF2-HMAC-SHA1 from 2.7; :func:`secret_key_code` picks as Handle.Net does);
:class:`SecretKeyAnswer` and :class:`PublicKeyAnswer` parse answer bytes.

UDP: :func:`split_datagrams` cuts at 492 message bytes per datagram;
:class:`Reassembler` puts sets back together by (address, request id) within
bounds, with an explicit ``expire(now)``.

TCP: :class:`StreamFramer` cuts a byte stream into whole ``envelope +
message`` units (``feed(data)`` / ``eof()`` return them as ``bytes``, then at
most one :class:`HandleProtocolError` for an envelope it cannot frame or a
stream cut short); ``buffered`` and ``max_messages`` serve backpressure.
"""

from protocol.codes import RC
from protocol.handle.bodies import (AddValueRequest, Body, Challenge, ChallengeAnswerRequest, CreateHandleRequest,
                                    CreateHandleResponse, DeleteHandleRequest, EmptyResponse, ErrorResponse,
                                    GenericRequest, GetSiteInfoRequest, GetSiteInfoResponse, ListHandlesRequest,
                                    ListHandlesResponse, ModifyValueRequest, RawBody, ReferralResponse,
                                    RemoveValueRequest, ResolutionRequest, ResolutionResponse,
                                    VerifyChallengeRequest, VerifyChallengeResponse)
from protocol.handle.challenge import (PUBLIC_KEY, SECRET_KEY, PublicKeyAnswer, SecretKeyAnswer, challenge_data,
                                       secret_key_answer, secret_key_code, verify_secret_key_answer)
from protocol.handle.codes import (MAX_VERSION, MIN_VERSION, EnvFlag, HashCode, OpCode, OpFlag, Version, as_rc,
                                   digest_code_for)
from protocol.handle.credential import Credential, signed_data
from protocol.handle.envelope import ENVELOPE_SIZE, HEADER_SIZE, Envelope, Header
from protocol.handle.errors import DEFAULT_LIMITS, HandleProtocolError, Limits
from protocol.handle.message import (REPLY_LIFETIME, Message, RequestDigest, body_type, decode, decode_message,
                                     encode, encode_message, header_and_body, make_reply, make_request,
                                     protocol_error_reply, reply_version)
from protocol.handle.keys import OAKLEY_GROUP_2_G, OAKLEY_GROUP_2_P, DHPublicKey, load_public_key, public_key_bytes
from protocol.handle.session import (KeyExchange, LoginRequest, PasswordLoginRequest, SessionCipher,
                                     SessionExchangeKeyRequest,
                                     SessionSetupRequest, SessionSetupResponse)
from protocol.handle.sessioncrypto import (DHPrivateKey, decrypt_message, decrypt_wire, dh_client_keypair,
                                           dh_client_session_key, dh_server_exchange, encrypt_message, encrypt_wire,
                                           new_session_key, pack_session_key, rsa_decrypt_session_key,
                                           rsa_encrypt_session_key, unpack_session_key)
from protocol.handle.signing import mac_credential, sign, verify_mac, verify_signature
from protocol.handle.stream import StreamFramer
from protocol.handle.udp import UDP_DATAGRAM_BYTES, UDP_PAYLOAD_BYTES, Reassembler, split_datagrams
from protocol.handle.valuecodec import decode_value, encode_value

__all__ = [
    "RC", "Body", "AddValueRequest", "Challenge", "ChallengeAnswerRequest", "CreateHandleRequest",
    "CreateHandleResponse", "DeleteHandleRequest", "EmptyResponse", "ErrorResponse", "GenericRequest",
    "GetSiteInfoRequest", "GetSiteInfoResponse", "ListHandlesRequest", "ListHandlesResponse",
    "ModifyValueRequest", "RawBody", "ReferralResponse", "RemoveValueRequest", "ResolutionRequest",
    "ResolutionResponse", "VerifyChallengeRequest", "VerifyChallengeResponse",
    "PUBLIC_KEY", "SECRET_KEY", "PublicKeyAnswer", "SecretKeyAnswer", "challenge_data", "secret_key_answer",
    "secret_key_code", "verify_secret_key_answer",
    "MAX_VERSION", "MIN_VERSION", "EnvFlag", "HashCode", "OpCode", "OpFlag", "Version", "as_rc",
    "digest_code_for", "Credential", "signed_data", "ENVELOPE_SIZE", "HEADER_SIZE", "Envelope", "Header",
    "DEFAULT_LIMITS", "HandleProtocolError", "Limits",
    "REPLY_LIFETIME", "Message", "RequestDigest", "body_type", "decode", "decode_message", "encode",
    "encode_message", "header_and_body", "make_reply", "make_request", "protocol_error_reply", "reply_version",
    "OAKLEY_GROUP_2_G", "OAKLEY_GROUP_2_P", "DHPublicKey", "load_public_key", "public_key_bytes",
    "KeyExchange", "LoginRequest", "PasswordLoginRequest", "SessionCipher", "SessionExchangeKeyRequest",
    "SessionSetupRequest",
    "SessionSetupResponse", "DHPrivateKey", "decrypt_message", "decrypt_wire", "dh_client_keypair",
    "dh_client_session_key", "dh_server_exchange", "encrypt_message", "encrypt_wire", "new_session_key",
    "pack_session_key", "unpack_session_key", "rsa_decrypt_session_key", "rsa_encrypt_session_key",
    "mac_credential", "sign", "verify_mac", "verify_signature",
    "StreamFramer", "UDP_DATAGRAM_BYTES", "UDP_PAYLOAD_BYTES", "Reassembler", "split_datagrams", "decode_value",
    "encode_value",
]

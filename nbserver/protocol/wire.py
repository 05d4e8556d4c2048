"""Jupyter messages on ZMQ (the kernel side). Theory of operation:

A message is a list of ZMQ frames::

    [*identities, b"<IDS|MSG>", signature, header, parent_header, metadata, content, *buffers]

``signature`` is the hex HMAC (``hmac-sha256`` by default) of the four JSON parts under the
connection file's key; an empty key means unsigned. :class:`Signer` signs outgoing parts and
verifies incoming ones in constant time; :func:`split` finds the delimiter and checks the shape.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import orjson

from .errors import ProtocolError

__all__ = ["DELIM", "Signer", "new_message", "split", "string_field"]

DELIM = b"<IDS|MSG>"


class Signer:
    """HMAC signing of message parts with a connection key and scheme (``hmac-<hash>``)."""

    def __init__(self, key: bytes, scheme: str = "hmac-sha256") -> None:
        algorithm = scheme.removeprefix("hmac-")
        if not scheme.startswith("hmac-") or algorithm not in hashlib.algorithms_available:
            raise ValueError(f"unsupported signature scheme {scheme!r}")
        self._key = key
        # keyed once: copying it costs less than keying a new HMAC for every message
        self._keyed = hmac.new(key, digestmod=algorithm) if key else None

    def sign(self, parts: Sequence[bytes]) -> bytes:
        """Signature of the four JSON parts (header, parent_header, metadata, content)."""
        if self._keyed is None:
            return b""
        mac = self._keyed.copy()
        for part in parts[:4]:
            mac.update(part)
        return mac.hexdigest().encode("ascii")

    def verify(self, signature: bytes, parts: Sequence[bytes]) -> bool:
        if not self._key:
            return True
        return hmac.compare_digest(signature, self.sign(parts))

    def frames(self, parts: Sequence[bytes], identities: Sequence[bytes] = ()) -> list[bytes]:
        """The ZMQ frames that carry ``parts``, signed."""
        return [*identities, DELIM, self.sign(parts), *parts]


def string_field(part: bytes, key: str) -> str | None:
    """``part``'s top-level ``key`` when ``part`` is a JSON object and the value a string, else
    None: what routing and state tracking read from headers (``msg_id``, ``session``,
    ``msg_type``) and status contents. orjson reads a header in a fifth of ``json.loads``' time
    and its strings are exact (only its numbers differ: integers over 64 bits become floats);
    what it refuses (NaN, lone surrogates) goes to the standard library."""
    try:
        value = orjson.loads(part)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(part)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python allows
            return None
    field = value.get(key) if isinstance(value, dict) else None
    return field if isinstance(field, str) else None


def split(frames: Sequence[bytes]) -> tuple[list[bytes], bytes, list[bytes]]:
    """``(identities, signature, parts)`` of a received multipart message.

    Raises:
        ProtocolError: no delimiter, or fewer than four parts after the signature.
    """
    try:
        index = list(frames).index(DELIM)
    except ValueError:
        raise ProtocolError("no <IDS|MSG> delimiter in message") from None
    parts = list(frames[index + 2 :])
    if index + 1 >= len(frames) or len(parts) < 4:
        raise ProtocolError("message has fewer than 4 parts after the signature")
    return list(frames[:index]), frames[index + 1], parts


def new_message(
    msg_type: str, content: dict[str, Any], session: str, parent_header: bytes = b"{}"
) -> tuple[str, list[bytes]]:
    """A message the server makes itself (a request of its own, a status or notice for clients):
    ``(msg_id, [header, parent_header, metadata, content])``, protocol version 5.3."""
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "msg_type": msg_type,
        "session": session,
        "username": "nbserver",
        "date": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "version": "5.3",
    }
    return msg_id, [json.dumps(header).encode(), parent_header, b"{}", json.dumps(content).encode()]

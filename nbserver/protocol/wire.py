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

from .errors import ProtocolError

__all__ = ["DELIM", "Signer", "new_message", "split"]

DELIM = b"<IDS|MSG>"


class Signer:
    """HMAC signing of message parts with a connection key and scheme (``hmac-<hash>``)."""

    def __init__(self, key: bytes, scheme: str = "hmac-sha256") -> None:
        algorithm = scheme.removeprefix("hmac-")
        if not scheme.startswith("hmac-") or algorithm not in hashlib.algorithms_available:
            raise ValueError(f"unsupported signature scheme {scheme!r}")
        self._key = key
        self._digest = algorithm

    def sign(self, parts: Sequence[bytes]) -> bytes:
        """Signature of the four JSON parts (header, parent_header, metadata, content)."""
        if not self._key:
            return b""
        mac = hmac.new(self._key, digestmod=self._digest)
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

"""The error every codec raises for malformed input."""

from __future__ import annotations

__all__ = ["ProtocolError"]


class ProtocolError(ValueError):
    """A frame or message that cannot be decoded; the message says what is wrong."""

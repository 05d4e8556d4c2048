"""Pure protocol code: Jupyter wire messages and the two kernel-websocket framings.

Nothing here does I/O or imports beyond the standard library; every function maps bytes to
bytes (or to small values) and raises :class:`ProtocolError` for malformed input.
"""

from .errors import ProtocolError

__all__ = ["ProtocolError"]

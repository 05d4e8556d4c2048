"""The server's own API: version, status, identity, the served contract, shutdown."""

from .handlers import routes

__all__ = ["routes"]

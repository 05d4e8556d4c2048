"""Origin and Host rules, shared by HTTP handlers and websocket upgrades. Pure functions.

- A cookie-authenticated request (HTTP or websocket) that carries an ``Origin`` must come from
  the server's own origin or from one listed in ``allow_origin``; a token-authenticated one may
  come from anywhere (the token is the proof).
- When the server listens on a loopback address, requests whose ``Host`` is not local are refused
  unless ``allow_remote_access`` is set: this stops DNS-rebinding attacks on a local server.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["host_is_local", "is_loopback", "origin_allowed", "same_origin"]

LOCAL_HOSTNAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _hostname(host: str) -> str:
    """``"[::1]:8888"`` -> ``"::1"``, ``"Example.com:80"`` -> ``"example.com"``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def is_loopback(address: str) -> bool:
    name = _hostname(address)
    if name in LOCAL_HOSTNAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_is_local(host: str) -> bool:
    """True if a ``Host`` header names this machine by a loopback address or local name."""
    return bool(host) and is_loopback(host)


def same_origin(origin: str, host: str) -> bool:
    """True if ``origin`` (``scheme://host[:port]``) names the host the request was sent to."""
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host.strip().lower()


def origin_allowed(origin: str, host: str, allow_origin: tuple[str, ...]) -> bool:
    """True if a request from ``origin`` to ``host`` may proceed with cookie credentials."""
    if "*" in allow_origin or same_origin(origin, host):
        return True
    return origin.rstrip("/").lower() in {o.rstrip("/").lower() for o in allow_origin}

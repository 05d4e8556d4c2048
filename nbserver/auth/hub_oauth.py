"""The pure parts of JupyterHub's single-user contract: scopes, OAuth state, PKCE, cookie names.

No I/O here; :mod:`nbserver.auth.hub` does the talking.

**Scopes.** The Hub tells a server which scopes let a token in (``JUPYTERHUB_OAUTH_ACCESS_SCOPES``,
normally ``access:servers!server=<user>/<server>`` and ``access:servers!user=<user>``). A token
is let in when one of the scopes it holds grants one of those: the same scope, the unfiltered
scope (``access:servers``), a ``!user=<owner>`` filter for a scope on one of the owner's
servers, or a ``!group=<g>`` filter when the owner is a member of ``g``. Any other filter
(another user, another server, a service) grants nothing.

**OAuth state.** Logging in is the authorization-code flow with PKCE (RFC 7636, ``S256``). The
browser leaves with a random ``state``; the code verifier and the local URL to come back to
travel in a signed, ``HttpOnly`` cookie whose name ends with the state's first characters (so
that two logins at once in one browser do not overwrite each other). The callback accepts a
code only with the cookie that names the same state, compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from tornado.web import create_signed_value, decode_signed_value

__all__ = [
    "OAuthState",
    "access_granted",
    "auth_cookie_name",
    "cookie_path",
    "group_scopes",
    "pkce_challenge",
    "scope_grants",
    "state_cookie_name",
]

STATE_MAX_AGE = 600  # seconds a login may take between leaving for the Hub and coming back
_STATE = re.compile(r"[A-Za-z0-9_-]{16,64}")  # what new_state makes, with room for others'
_STATE_NAME_CHARS = 8


def scope_grants(held: str, required: str, owner_groups: frozenset[str] = frozenset()) -> bool:
    """Whether the held scope ``held`` covers the ``required`` one (``base!kind=value`` each).

    ``owner_groups`` are the groups of the owner of the required resource (the user in a
    ``!user=`` or ``!server=<user>/<name>`` filter); a ``!group=`` filter grants nothing else.
    """
    held_base, bang, held_filter = held.partition("!")
    base, _, wanted = required.partition("!")
    if held_base != base or (bang and not held_filter):  # "scope!" is malformed, not unfiltered
        return False
    if not held_filter:
        return True  # the unfiltered scope covers every resource
    if not wanted:
        return False  # a filtered scope never covers the unfiltered one
    kind, _, value = held_filter.partition("=")
    wanted_kind, _, wanted_value = wanted.partition("=")
    if not value or not wanted_value:
        return False
    if (kind, value) == (wanted_kind, wanted_value):
        return True
    if wanted_kind == "server":
        owner = wanted_value.partition("/")[0]
    elif wanted_kind == "user":
        owner = wanted_value
    else:
        return False  # services and groups have no owner to match
    if kind == "user":
        return value == owner
    if kind == "group":
        return value in owner_groups
    return False


def access_granted(
    held: Iterable[str], required: Iterable[str], owner_groups: frozenset[str] = frozenset()
) -> bool:
    """Whether any held scope grants any required one (:func:`scope_grants`)."""
    wanted = tuple(required)
    return any(scope_grants(h, r, owner_groups) for h in held for r in wanted)


def group_scopes(held: Iterable[str], required: Iterable[str]) -> bool:
    """Whether a ``!group=`` filter among ``held`` could grant a required scope, so that the
    owner's groups are worth asking the Hub for."""
    bases = {r.partition("!")[0] for r in required}
    return any(h.partition("!")[0] in bases and h.partition("!")[2].startswith("group=") for h in held)


def pkce_challenge(verifier: str) -> str:
    """The ``S256`` code challenge of ``verifier``: base64url(SHA-256), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def auth_cookie_name(client_id: str, host_prefix: bool) -> str:
    """The login cookie's name: the OAuth client id, as jupyterhub-singleuser names it."""
    return ("__Host-" if host_prefix else "") + client_id


def cookie_path(base_url: str, host_prefix: bool) -> str:
    """Cookies live under the server's prefix only; ``__Host-`` cookies must use ``/``."""
    return "/" if host_prefix else base_url


def state_cookie_name(cookie_name: str, state: str) -> str | None:
    """The name of the cookie that carries ``state``; None for a state we never make."""
    if not _STATE.fullmatch(state):
        return None
    return f"{cookie_name}-oauth-state-{state[:_STATE_NAME_CHARS]}"


@dataclass(frozen=True)
class OAuthState:
    """One login under way: the ``state`` sent to the Hub, the PKCE verifier, where to go next."""

    state: str
    verifier: str
    next_url: str

    @classmethod
    def new(cls, next_url: str) -> OAuthState:
        return cls(secrets.token_urlsafe(16), secrets.token_urlsafe(48), next_url)

    def cookie_value(self, secret: bytes, cookie_name: str) -> str:
        """The signed value of the cookie named ``state_cookie_name(cookie_name, state)``."""
        name = state_cookie_name(cookie_name, self.state)
        assert name is not None
        payload = json.dumps({"s": self.state, "v": self.verifier, "n": self.next_url})
        return create_signed_value(secret, name, payload).decode("ascii")

    @classmethod
    def from_cookie(cls, secret: bytes, cookie_name: str, state: str, value: str | None) -> OAuthState | None:
        """The login that ``state`` (the callback's argument) belongs to, read from the value of
        its cookie; None when the cookie is missing, forged, older than ``STATE_MAX_AGE``, or
        names another state."""
        name = state_cookie_name(cookie_name, state)
        if name is None or not value:
            return None
        raw = decode_signed_value(secret, name, value, max_age_days=STATE_MAX_AGE / 86400)
        if raw is None:
            return None
        try:
            payload = json.loads(raw)
            found = cls(str(payload["s"]), str(payload["v"]), str(payload["n"]))
        except (ValueError, KeyError, TypeError):
            return None
        if not hmac.compare_digest(found.state.encode(), state.encode()):
            return None
        return found

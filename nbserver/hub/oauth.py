"""The hub as an OAuth 2 provider for its users' servers: JupyterHub's side of the single-user
login (``/hub/api/oauth2/authorize`` and ``/hub/api/oauth2/token``). No I/O but the store.

Theory of operation. Each running server is an OAuth client: its id is ``jupyterhub-user-<name>``
(``JUPYTERHUB_CLIENT_ID``), its secret is its own API token (``JUPYTERHUB_API_TOKEN``) and its
one redirect URI is ``<base>user/<name>/oauth_callback`` (``JUPYTERHUB_OAUTH_CALLBACK_URL``).
Clients are not stored apart: a client exists while its user's server is recorded as running,
which is also what makes them survive a hub restart.

1. The server sends a browser to ``authorize?client_id&redirect_uri&response_type=code&state``
   (and PKCE's ``code_challenge``, ``S256``). A logged-in user who may access that server
   (``access:servers`` on its owner: the owner, or an admin) gets a one-time code, valid
   :data:`CODE_SECONDS`, and is redirected to the redirect URI with ``code`` and ``state``.
   An unknown client or a wrong redirect URI is an error page, never a redirect (RFC 6749
   4.1.2.1); a user without access gets 403.
2. The server trades the code at ``token`` (form: ``client_id``, ``client_secret``,
   ``grant_type=authorization_code``, ``code``, ``redirect_uri``, ``code_verifier``) for an
   access token of its owner's login session, with :func:`~nbserver.hub.scopes.oauth_scopes`.
   Errors are RFC 6749 5.2 JSON: ``invalid_client`` (401), ``invalid_grant``,
   ``unsupported_grant_type``, ``invalid_request`` (400).

Logging out of the hub revokes the tokens of that login session; stopping a server revokes the
tokens issued to its client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from ..errors import BadRequest, Forbidden, NBServerError
from .scopes import allows, oauth_scopes
from .store import Store, now

__all__ = ["CODE_SECONDS", "OAuthError", "OAuthProvider", "client_id_for"]

CODE_SECONDS = 600.0
TOKEN_DAYS = 14.0


def client_id_for(name: str) -> str:
    return f"jupyterhub-user-{name}"


class OAuthError(NBServerError):
    """An error of the token endpoint: its body is RFC 6749's ``{"error", "error_description"}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description, reason=error, status=status)
        self.error = error

    def to_json(self) -> dict[str, str | None]:
        return {"error": self.error, "error_description": self.message}


@dataclass(frozen=True)
class _Code:
    client_id: str
    user: str
    redirect_uri: str
    challenge: str | None
    session_id: str | None
    expires: float


@dataclass(frozen=True)
class Client:
    client_id: str
    user: str
    redirect_uri: str
    token_id: int


class OAuthProvider:
    """Authorization codes (in memory) and access tokens (in the store).

    Args:
        store: the hub's database (servers and tokens).
        base_url: the hub's public prefix (``/``).
        clock: seconds, for code expiry (tests pass their own).
    """

    def __init__(self, store: Store, base_url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.base_url = base_url
        self._clock = clock
        self._codes: dict[str, _Code] = {}

    def client(self, client_id: str) -> Client | None:
        """The client ``client_id``: a running server's."""
        prefix = "jupyterhub-user-"
        if not client_id.startswith(prefix):
            return None
        name = client_id[len(prefix) :]
        for server in self.store.servers():
            if server.user == name:
                return Client(client_id, name, f"{self.base_url}user/{name}/oauth_callback", server.token_id)
        return None

    def authorize(
        self, query: Mapping[str, str], *, user: str, scopes: frozenset[str], session_id: str | None
    ) -> str:
        """The URL to send the browser back to: the redirect URI with a new ``code`` and ``state``.

        Raises:
            BadRequest: unknown client, wrong redirect URI, missing or unsupported parameters.
            Forbidden: ``user`` may not access the client's server.
        """
        client = self.client(query.get("client_id", ""))
        if client is None:
            raise BadRequest(f"Unknown OAuth client {query.get('client_id', '')!r}", reason="oauth")
        redirect_uri = query.get("redirect_uri") or client.redirect_uri
        if redirect_uri != client.redirect_uri:
            raise BadRequest(f"redirect_uri {redirect_uri!r} is not {client.client_id}'s", reason="oauth")
        if query.get("response_type", "code") != "code":
            raise BadRequest("Only response_type=code is supported", reason="oauth")
        challenge = query.get("code_challenge") or None
        if challenge is not None and query.get("code_challenge_method", "plain") != "S256":
            raise BadRequest("code_challenge_method must be S256", reason="oauth")
        if not allows(scopes, "access:servers", client.user):
            raise Forbidden(f"You do not have permission to access {client.user}'s server", reason="access")
        self._expire()
        code = secrets.token_urlsafe(32)
        self._codes[code] = _Code(
            client.client_id, user, redirect_uri, challenge, session_id, self._clock() + CODE_SECONDS
        )
        reply = {"code": code}
        if query.get("state"):
            reply["state"] = query["state"]
        return redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(reply)

    def _expire(self) -> None:
        moment = self._clock()
        for code in [c for c, v in self._codes.items() if v.expires <= moment]:
            del self._codes[code]

    def token(self, form: Mapping[str, str]) -> dict[str, object]:
        """Trade a code for an access token (RFC 6749 4.1.3); the JSON reply.

        Raises:
            OAuthError: see the module docstring.
        """
        if form.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code")
        client = self.client(form.get("client_id", ""))
        secret = self.store.find_token(form.get("client_secret", ""))
        if client is None or secret is None or secret.id != client.token_id:
            raise OAuthError("invalid_client", "Unknown client or wrong client secret", status=401)
        self._expire()
        pending = self._codes.pop(form.get("code", ""), None)  # one use, right or wrong
        if pending is None or pending.client_id != client.client_id:
            raise OAuthError("invalid_grant", "The code is unknown, used or expired")
        if form.get("redirect_uri", pending.redirect_uri) != pending.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        if pending.challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
            if not verifier or not hmac.compare_digest(digest, pending.challenge.encode()):
                raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        scopes = oauth_scopes(client.user, pending.user)
        seconds = int(TOKEN_DAYS * 86400)
        token, _ = self.store.add_token(
            pending.user,
            kind="oauth",
            scopes=scopes,
            note=f"OAuth login to {client.client_id}",
            client_id=client.client_id,
            session_id=pending.session_id,
            expires_at=now() + timedelta(seconds=seconds),
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": seconds,
            "scope": " ".join(sorted(scopes)),
        }

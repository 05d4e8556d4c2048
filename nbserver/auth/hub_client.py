"""A small client of the JupyterHub API, for a single-user server: who owns a token, a code
for a token, a user's groups, activity. tornado's ``AsyncHTTPClient``; no jupyterhub import.

Answers about tokens and groups are kept for ``cache_seconds`` (:class:`ExpiringCache`), and
simultaneous questions about the same token share one request to the Hub: a page that opens
with ten API calls asks the Hub once. A Hub that cannot be reached, or that answers 5xx, is a
:class:`HubUnavailable` (503): the request could not be judged, which is not the user's fault.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

from ..errors import NBServerError

__all__ = ["ExpiringCache", "HubClient", "HubRefused", "HubUnavailable"]

log = logging.getLogger("nbserver.hub")

K = TypeVar("K")
V = TypeVar("V")

REQUEST_TIMEOUT = 20.0


class HubUnavailable(NBServerError):
    """The Hub could not be asked (connection failed, timed out, or a 5xx answer)."""

    status = 503

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="hub unavailable")


class HubRefused(NBServerError):
    """The Hub said no to something only it can grant (an OAuth code): 403."""

    status = 403

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="oauth")


class ExpiringCache(Generic[K, V]):
    """A mapping whose entries live ``max_age`` seconds of ``clock`` (0: entries are never
    kept), holding at most ``max_entries`` (the oldest go first)."""

    def __init__(
        self, max_age: float, *, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` for a live entry, else ``(False, None)`` (an expired one is dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        stored, value = entry
        if self._clock() - stored >= self.max_age:
            del self._entries[key]
            return False, None
        return True, value

    def put(self, key: K, value: V) -> None:
        if self.max_age <= 0:
            return
        self._entries.pop(key, None)
        self._entries[key] = (self._clock(), value)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class HubClient:
    """Talks to the Hub's API at ``api_url`` with this server's ``api_token``.

    Args:
        api_url: ``JUPYTERHUB_API_URL`` (``.../hub/api``).
        api_token: this server's token, also its OAuth client secret.
        cache_seconds: how long an answer about a token or a user's groups is reused.
        ssl_context: client TLS for an https Hub (JupyterHub's internal SSL), or None.
        clock: the cache's clock (tests pass their own).
    """

    def __init__(
        self,
        api_url: str,
        api_token: str,
        *,
        cache_seconds: float,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_url = api_url.rstrip("/") + "/"
        self._token = api_token
        self._ssl = ssl_context
        self._http: AsyncHTTPClient | None = None  # made in the loop that first uses it
        self._users: ExpiringCache[str, dict[str, Any] | None] = ExpiringCache(cache_seconds, clock=clock)
        self._groups: ExpiringCache[str, frozenset[str] | None] = ExpiringCache(cache_seconds, clock=clock)
        self._pending: dict[str, asyncio.Future[Any]] = {}
        #: the Hub's version, from its ``X-JupyterHub-Version`` header, once it answered
        self.hub_version: str | None = None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        token: str | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> HTTPResponse:
        """One request to the Hub (``path_or_url`` relative to ``api_url`` unless absolute),
        authenticated with ``token`` (None: the server's own). Any answer below 500 is returned.

        Raises:
            HubUnavailable: no answer, or a 5xx one.
        """
        url = path_or_url if "://" in path_or_url else self.api_url + path_or_url
        request = HTTPRequest(
            url,
            method=method,
            headers={"Authorization": f"token {self._token if token is None else token}", **(headers or {})},
            body=body,
            request_timeout=timeout,
            connect_timeout=min(timeout, 10.0),
            ssl_options=self._ssl,
            follow_redirects=False,
        )
        if self._http is None:
            self._http = AsyncHTTPClient(force_instance=True)
        try:
            response = await self._http.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            raise HubUnavailable(f"Cannot reach the Hub at {url}: {exc}") from exc
        if response.code == 599 or response.code >= 500:
            detail = response.error or response.reason
            raise HubUnavailable(f"The Hub did not answer {method} {url}: {detail}")
        version = response.headers.get("X-JupyterHub-Version")
        if version:
            self.hub_version = version
        return response

    async def _once(self, key: str, make: Callable[[], Awaitable[Any]]) -> Any:
        """``await make()``, shared by every caller asking under ``key`` meanwhile."""
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(make())
            pending.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(pending)

    def _done(self, key: str, done: asyncio.Future[Any]) -> None:
        self._pending.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: every caller may have gone (disconnected) meanwhile

    async def user_for_token(self, token: str) -> dict[str, Any] | None:
        """The Hub's model of whoever owns ``token`` (``name``, ``kind``, ``scopes``, ...), or
        None when the Hub does not know the token (or it is empty). Cached; raises HubUnavailable."""
        if not token:
            return None
        key = "token:" + hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        found, model = self._users.get(key)
        if found:
            return model

        async def ask() -> dict[str, Any] | None:
            response = await self.request("GET", "user", token=token)
            model = _json_object(response) if response.code == 200 else None
            if model is not None and not isinstance(model.get("name"), str):
                model = None
            if model is not None:
                model["scopes"] = [s for s in model.get("scopes") or () if isinstance(s, str)]
            self._users.put(key, model)
            return model

        result: dict[str, Any] | None = await self._once(key, ask)
        return result

    async def groups_of(self, username: str) -> frozenset[str] | None:
        """``username``'s groups, or None when this server's token may not read them (it needs
        ``read:users:groups``). Cached; raises HubUnavailable."""
        key = "groups:" + username
        found, groups = self._groups.get(key)
        if found:
            return groups

        async def ask() -> frozenset[str] | None:
            response = await self.request("GET", "users/" + quote(username, safe=""))
            model = _json_object(response) if response.code == 200 else None
            raw = model.get("groups") if model is not None else None
            groups = frozenset(g for g in raw if isinstance(g, str)) if isinstance(raw, list) else None
            self._groups.put(key, groups)
            return groups

        result: frozenset[str] | None = await self._once(key, ask)
        return result

    async def token_for_code(self, *, code: str, client_id: str, redirect_uri: str, verifier: str) -> str:
        """Trade an OAuth ``code`` for a token (this server's token is the client secret).

        Raises:
            HubRefused: the Hub refused the code (used, expired, or another client's).
            HubUnavailable: the Hub could not be asked.
        """
        form = {
            "client_id": client_id,
            "client_secret": self._token,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        response = await self.request(
            "POST",
            "oauth2/token",
            body=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        reply = _json_object(response)
        token = reply.get("access_token") if reply is not None and response.code == 200 else None
        if not isinstance(token, str) or not token:
            detail = (reply or {}).get("error_description") or (reply or {}).get("error") or response.code
            raise HubRefused(f"The Hub refused the OAuth code: {detail}. Try logging in again.")
        return token

    async def post_activity(self, url: str, body: Mapping[str, Any]) -> int:
        """POST ``body`` (JSON) to the activity ``url``; the Hub's status. Raises HubUnavailable."""
        response = await self.request(
            "POST", url, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        return response.code


def _json_object(response: HTTPResponse) -> dict[str, Any] | None:
    try:
        data = json.loads(response.body or b"")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None

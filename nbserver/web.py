"""The web layer's one base handler: authentication, Origin/XSRF policy, body limits, errors.

Request flow (``prepare``), the same for every route:

1. Host check (DNS rebinding) when listening on loopback.
2. ``OPTIONS`` stops here: CORS preflights are public and answered by :meth:`BaseHandler.options`.
3. Identity from token header, ``?token=``, or login cookie, as the server's identity provider
   judges them (:mod:`nbserver.auth.identity`; under JupyterHub, :mod:`nbserver.auth.hub`).
   A route that needs a user and has none: API routes answer 403 JSON, pages redirect to
   where the provider logs people in (``/login?next=...``, or the Hub's OAuth) unless the
   provider refused the user outright (403). The log line says which check failed.
4. Requests without a token (cookie-authenticated, or any when authentication is off): a foreign
   ``Origin`` is refused, and unsafe methods need the ``_xsrf`` cookie echoed in ``X-XSRFToken``.
   Token-authenticated requests need neither.
5. A declared ``Content-Length`` over ``max_body_size`` is refused with 413 before the body is read.

Keep-alive: bodies are streamed (so that the size limit applies before reading), which means
``prepare`` runs before tornado has read the body, and a response finished there makes tornado
drop the connection without saying so (the client's next request on it meets a reset). So an
answer decided in ``prepare`` (any refusal, the login redirect, a 404 fallback) is not sent
there: :meth:`BaseHandler.answer_after_body` keeps it, the body is read and discarded (bounded
by ``max_body_size``), and the answer goes out in place of the HTTP method, on a connection that
stays usable. A body that cannot be drained (declared over the limit) gets its answer at once,
and so does anything that finishes before the body some other way (tornado's 405 for an
unknown method): those responses say ``Connection: close``, and the connection is closed.

Errors: handlers and managers raise :class:`~nbserver.errors.NBServerError`; :meth:`write_error`
is the single place that turns any exception into ``{"message", "reason"}`` (or, for pages, a
small HTML page). 4xx are logged as warnings without a traceback, 5xx with one.
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import Awaitable, Callable
from html import escape
from http.client import responses as http_responses
from typing import Any, ClassVar
from urllib.parse import urlencode

from tornado.concurrent import Future
from tornado.web import HTTPError, RequestHandler, stream_request_body

from .auth.identity import Authenticator, AuthResult, CookieSpec, Credentials, Identity, Via
from .auth.policy import host_is_local, is_loopback, origin_allowed
from .context import ServerContext
from .errors import BadRequest, Forbidden, NBServerError, PayloadTooLarge

__all__ = [
    "APIHandler",
    "Access",
    "BaseHandler",
    "PageHandler",
    "allowed_methods",
    "authenticate_request",
    "log_request",
]

access_log = logging.getLogger("nbserver.access")
app_log = logging.getLogger("nbserver.app")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SECRET_PARAMS = re.compile(r"((?:^|[?&])(?:token|_xsrf|password)=)[^&#]*", re.IGNORECASE)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes, loads: Callable[..., Any] = json.loads) -> Any:
    """A request body as JSON: ``None`` for an empty body; 400 ``"bad json"`` for anything
    unparsable (``NaN`` and ``Infinity`` included, nesting too deep to parse, and a body of
    only whitespace, as jupyter_server). ``loads`` parses: ``json.loads``, or a function that
    takes its ``parse_constant`` and gives the same value or error."""
    if not raw:
        return None
    try:
        return loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"Invalid JSON in body of request: {exc}", reason="bad json") from None


def encode_json(model: Any) -> bytes:
    """A response body: compact JSON, UTF-8."""
    return json.dumps(model, separators=(",", ":"), check_circular=False).encode("utf-8")  # models are trees


class Access(enum.Enum):
    """What a handler requires of a request. Every routed handler must declare one."""

    USER = "user"  # an authenticated identity
    PUBLIC = "public"  # anybody: login page, version, redirects


async def authenticate_request(
    handler: RequestHandler, ctx: ServerContext, *, websocket: bool = False
) -> AuthResult:
    """Resolve the identity of a request; shared by HTTP handlers and websocket upgrades.

    Raises NBServerError when the identity provider cannot decide (the Hub is down: 503)."""
    headers = handler.request.headers
    return await ctx.auth.identify(
        Credentials(
            authorization=headers.get("Authorization"),
            query_token=handler.get_query_argument("token", None),
            cookie_name=ctx.cookie_name,
            cookie=handler.get_cookie(ctx.cookie_name),
            fetch_mode=headers.get("Sec-Fetch-Mode"),
            websocket=websocket,
        )
    )


def scrub_uri(uri: str) -> str:
    """Hide secrets (``token``, ``_xsrf``, ``password``) in a URI before it is logged."""
    return _SECRET_PARAMS.sub(r"\1[secret]", uri)


def log_request(handler: RequestHandler) -> None:
    """tornado ``log_function``: one access line; 2xx at debug, 3xx info, 4xx warning, 5xx error."""
    status = handler.get_status()
    if status < 300 or status == 304:
        level = logging.DEBUG
    elif status < 400:
        level = logging.INFO
    elif status < 500:
        level = logging.WARNING
    else:
        level = logging.ERROR
    if not access_log.isEnabledFor(level):
        return
    request = handler.request
    access_log.log(
        level,
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        scrub_uri(request.uri or ""),
        request.remote_ip,
        1000.0 * request.request_time(),
    )


def allowed_methods(handler: RequestHandler) -> str:
    """The ``Allow`` header of a 405 (RFC 9110 requires one): the methods that ``handler``'s class
    implements, rather than inheriting tornado's 405 stubs."""
    cls = type(handler)
    return ", ".join(
        m
        for m in handler.SUPPORTED_METHODS
        if getattr(cls, m.lower(), None) is not getattr(RequestHandler, m.lower(), None)
    )


@stream_request_body
class BaseHandler(RequestHandler):
    """Base of every nbserver HTTP handler. Subclasses set ``access``; see the module docstring."""

    access: ClassVar[Access]
    #: whether an authenticated request counts as user activity for ``/api/status``
    track_activity: ClassVar[bool] = True
    content_security_policy: ClassVar[str] = "frame-ancestors 'self'"

    ctx: ServerContext
    identity: Identity | None

    def initialize(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.identity = None
        self._body: list[bytes] = []
        self._early_answer: Callable[[], None] | None = None
        # Whether tornado has read the whole request body: at once for a handler that does not
        # stream it (tornado reads the body before ``prepare``), else when it calls the HTTP method.
        self._body_received = not getattr(type(self), "_stream_request_body", False)
        verb = (self.request.method or "").lower()
        if not self._body_received and callable(getattr(self, verb, None)):
            # tornado calls the method named after the verb once the body is in: this instance
            # attribute stands in for it, to learn that moment (see _after_body).
            setattr(self, verb, self._after_body)
        self.set_header("Content-Security-Policy", self.csp())
        for name, value in ctx.headers.items():
            self.set_header(name, value)

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", self.csp())
        ctx: ServerContext | None = getattr(self, "ctx", None)  # None while tornado's __init__ runs
        for name, value in ctx.headers.items() if ctx is not None else ():
            self.set_header(name, value)

    def csp(self) -> str:
        """This response's ``Content-Security-Policy``: ``content_security_policy``, where
        ``frame-ancestors 'self'`` also lists the configured ``frame_ancestors``."""
        ctx: ServerContext | None = getattr(self, "ctx", None)  # None while tornado's __init__ runs
        if ctx is None or not ctx.config.frame_ancestors:
            return self.content_security_policy
        allowed = " ".join(("frame-ancestors 'self'", *ctx.config.frame_ancestors))
        return self.content_security_policy.replace("frame-ancestors 'self'", allowed)

    # -- request flow -------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Admit the request (the steps of the module docstring). A refusal is answered through
        :meth:`answer_after_body`, so it is not yet sent when this returns: see :attr:`answered`."""
        self._limit_connection()
        try:
            await self.admit()
        except Exception as exc:  # every error is answered, after the body
            self.answer_after_body(exc)

    async def admit(self) -> None:
        """The checks of ``prepare``; raises the refusal, or leaves it to :meth:`refuse_anonymous`."""
        config = self.ctx.config
        host = self.request.host or ""
        if not config.allow_remote_access and is_loopback(config.ip) and not host_is_local(host):
            raise Forbidden(f"Host {host!r} is not allowed: the server is local", reason="host")
        if self.request.method == "OPTIONS":
            return
        access = getattr(type(self), "access", None)
        if not isinstance(access, Access):  # undeclared means refused
            raise Forbidden(f"{type(self).__name__} declares no access rule", reason="access")
        try:
            result = await authenticate_request(self, self.ctx)
        except NBServerError as exc:  # undecidable (the Hub is down): public routes go on
            if access is Access.USER:
                raise
            result = AuthResult(None, exc.message)
        self.identity = result.identity
        if self.identity is None and access is Access.USER:
            self.refuse_anonymous(result)
            return
        if self.identity is not None and self.identity.via is not Via.TOKEN:
            self.check_browser_request()
        self.set_cors_headers()
        self.limit_body()
        tracked = self.track_activity and self.get_query_argument("no_track_activity", None) is None
        if self.identity is not None and tracked:
            self.ctx.activity.touch()

    # -- answers decided before the body ---------------------------------------------------------

    @property
    def answered(self) -> bool:
        """Whether this request's answer is decided: sent, or waiting for the body to be read."""
        return self._finished or self._early_answer is not None

    def answer_after_body(self, answer: BaseException | Callable[[], None]) -> None:
        """Answer this request with ``answer`` (an error to raise, or a function that responds,
        such as a redirect) in place of its HTTP method, once the body is read.

        Meant for ``prepare``: the body still unread is discarded as it arrives (bounded by
        ``max_body_size``), so the connection stays usable for the client's next request. When
        the body is already read, ``answer`` is given now; when it cannot be drained (declared
        longer than the limit), it is given now and the response says ``Connection: close``.
        """
        if isinstance(answer, BaseException):
            error = answer

            def respond() -> None:
                raise error

        else:
            respond = answer
        if self._body_received or self._declared_length() > self.ctx.config.max_body_size:
            respond()
        else:
            self._limit_connection()  # the drain too is bounded (a chunked body has no length)
            self._early_answer = respond

    def _limit_connection(self) -> None:
        """Hold the body tornado reads for this request to ``max_body_size``."""
        connection = self.request.connection
        if connection is not None and hasattr(connection, "set_max_body_size"):
            connection.set_max_body_size(self.ctx.config.max_body_size)

    def _after_body(self, *args: Any, **kwargs: Any) -> Awaitable[None] | None:
        """The HTTP method as tornado calls it, once the body is read: gives the answer decided
        early, or calls the handler's own method."""
        verb = (self.request.method or "").lower()
        del self.__dict__[verb]  # the class's method again
        self._body_received = True
        if self._early_answer is not None:
            self._early_answer()
            return None
        method: Callable[..., Awaitable[None] | None] = getattr(self, verb)
        return method(*args, **kwargs)

    def _declared_length(self) -> int:
        declared = self.request.headers.get("Content-Length", "0")
        return int(declared) if declared.isdigit() else 0

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> Future[None]:
        """tornado's ``finish``; a response sent before the request body was read says
        ``Connection: close``, because tornado then closes the connection."""
        if not self._body_received and not self._finished:
            self.set_header("Connection", "close")
        return super().finish(chunk)

    def refuse_anonymous(self, result: AuthResult) -> None:
        """An anonymous request reached a route that needs a user. API routes: 403."""
        failure = result.failure or "no credential"
        message = f"Not allowed: {failure}" if result.refused else f"Authentication required ({failure})"
        raise Forbidden(message, reason="auth")

    def check_browser_request(self) -> None:
        """Origin and XSRF checks for a request that carries no token: one authenticated by
        cookie alone, or any request when authentication is off (else any web page could post
        to a local server)."""
        origin = self.request.headers.get("Origin")
        if origin and not origin_allowed(origin, self.request.host or "", self.ctx.config.allow_origin):
            raise Forbidden(f"Blocking cross-origin request from {origin}", reason="origin")
        if self.request.method in UNSAFE_METHODS:
            try:
                self.check_xsrf_cookie()
            except HTTPError as exc:
                raise Forbidden(f"XSRF check failed: {exc.log_message}", reason="xsrf") from None

    def set_cors_headers(self) -> None:
        origin = self.request.headers.get("Origin")
        if not origin:
            return
        allowed = self.ctx.config.allow_origin
        if "*" in allowed:
            self.set_header("Access-Control-Allow-Origin", "*")
            return
        explicit = origin.rstrip("/").lower() in {o.rstrip("/").lower() for o in allowed}
        token = self.identity is not None and self.identity.via is Via.TOKEN
        if explicit or token:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.add_header("Vary", "Origin")
        if explicit:
            self.set_header("Access-Control-Allow-Credentials", "true")

    def options(self, *args: Any, **kwargs: Any) -> None:
        """CORS preflight: public, describes what the real request may carry."""
        self.set_cors_headers()
        self.set_header("Access-Control-Allow-Headers", "accept, content-type, authorization, x-xsrftoken")
        self.set_header("Access-Control-Allow-Methods", "GET, PUT, POST, PATCH, DELETE, OPTIONS")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    # -- bodies ----------------------------------------------------------------------------------

    def limit_body(self) -> None:
        """413 for a declared ``Content-Length`` over ``max_body_size`` (tornado holds a body
        without one, chunked, to the same limit while reading it)."""
        limit = self.ctx.config.max_body_size
        if self._declared_length() > limit:
            raise PayloadTooLarge(
                f"Request body of {self._declared_length()} bytes exceeds the limit of {limit} bytes",
                reason="too large",
            )

    def data_received(self, chunk: bytes) -> None:
        if self._early_answer is None:  # else the body is only drained
            self._body.append(chunk)

    @property
    def body_length(self) -> int:
        """The length of the body received so far, without joining it."""
        return sum(map(len, self._body))

    @property
    def body(self) -> bytes:
        """The request body (streamed in, so that the size limit applies before reading)."""
        if len(self._body) > 1:
            self._body[:] = [b"".join(self._body)]
        return self._body[0] if self._body else b""

    def json_body(self) -> Any:
        """The body parsed as JSON (:func:`parse_json`)."""
        return parse_json(self.body)

    def write_json(self, model: Any, status: int = 200, *, encoded: bytes | None = None) -> None:
        """Send ``model`` as JSON; ``encoded`` is its encoding when already made (off the loop)."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(encode_json(model) if encoded is None else encoded)

    # -- errors ------------------------------------------------------------------------------------

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        if exc_info is not None and isinstance(exc_info[1], NBServerError):
            status_code = exc_info[1].status
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, NBServerError) and value.status < 500:
            app_log.warning(
                "%d %s %s: %s", value.status, self.request.method, self.request.path, value.message
            )
        elif isinstance(value, NBServerError):
            app_log.error(
                "%s %s: %s",
                self.request.method,
                self.request.path,
                value.message,
                exc_info=(typ, value, tb),
            )
        else:
            super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The one place where an error becomes a response body."""
        if status_code == 405:
            self.set_header("Allow", allowed_methods(self))
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, NBServerError):
            self.render_error(status_code, exc.to_json())
            return
        if isinstance(exc, HTTPError):
            message = exc.log_message % exc.args if exc.log_message else self._reason
        elif exc is not None:
            message = "Unhandled error"
        else:
            message = self._reason
        self.render_error(status_code, {"message": message, "reason": None})

    def render_error(self, status: int, error: dict[str, str | None]) -> None:
        """Send ``error`` (``{"message", "reason"}``, maybe ``short_message``) as the body."""
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(error))


class APIHandler(BaseHandler):
    """A JSON API handler: errors are JSON, anonymous requests get 403."""

    content_security_policy = "frame-ancestors 'none'; default-src 'none'"

    def compute_etag(self) -> None:
        return None  # API clients do not revalidate; hashing every large model costs time


class PageHandler(BaseHandler):
    """An HTML page: anonymous visitors are sent to the login page; errors are small HTML pages.

    A page opened with ``?token=`` trades the token for a login cookie and is redirected to the
    same URL without it, so the token leaks into neither Referer headers nor history.
    """

    async def prepare(self) -> None:
        await super().prepare()
        if self.answered or self.identity is None or self.identity.via is not Via.TOKEN:
            return
        if self.request.method in ("GET", "HEAD") and "token" in self.request.query_arguments:
            self.answer_after_body(self._trade_token)

    def _trade_token(self) -> None:
        self.set_login_cookie()
        query = [
            (k, v.decode("utf-8", "replace"))
            for k, values in self.request.query_arguments.items()
            if k != "token"
            for v in values
        ]
        self.redirect(self.request.path + ("?" + urlencode(query) if query else ""))

    def refuse_anonymous(self, result: AuthResult) -> None:
        if self.request.method not in ("GET", "HEAD") or result.refused:
            super().refuse_anonymous(result)
        self.answer_after_body(lambda: self.go_to_login(self.request.uri or "/"))

    def go_to_login(self, next_url: str) -> None:
        """Send the browser where the identity provider logs people in, to come back to the
        local URL ``next_url``; sets the cookies that this needs (the Hub's OAuth state)."""
        start = self.ctx.auth.start_login(next_url, secure=self.request.protocol == "https")
        for cookie in start.cookies:
            self.set_cookie_spec(cookie)
        self.redirect(start.url)

    def set_cookie_spec(self, cookie: CookieSpec) -> None:
        """Set a cookie an identity provider described (``HttpOnly``, the server's SameSite)."""
        self.set_cookie(
            cookie.name,
            cookie.value,
            path=cookie.path,
            max_age=cookie.max_age,
            httponly=True,
            secure=cookie.secure,
            samesite=self.ctx.config.cookie_samesite,
        )

    def set_login_cookie(self) -> None:
        """Log the local authenticator's user in after a token or password login (other
        identity providers, such as the Hub's, set their own cookie)."""
        ctx = self.ctx
        if not isinstance(ctx.auth, Authenticator):
            return
        self.set_cookie(
            ctx.cookie_name,
            ctx.auth.login_cookie(ctx.cookie_name),
            path=ctx.config.base_url,
            expires_days=ctx.config.cookie_max_age_days,
            httponly=True,
            samesite=ctx.config.cookie_samesite,
            secure=self.request.protocol == "https" or ctx.config.cookie_samesite == "None",
        )
        self.xsrf_token  # noqa: B018 -- reading it sets the _xsrf cookie that the UI echoes

    def render_error(self, status: int, error: dict[str, str | None]) -> None:
        phrase = http_responses.get(status, "Error")
        message = error["message"] or ""
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(
            f"<!doctype html><meta charset=utf-8><title>{status} {escape(phrase)}</title>"
            f"<h1>{status} {escape(phrase)}</h1><p>{escape(message)}</p>"
        )

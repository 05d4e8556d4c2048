"""The one error family.

Managers and other tornado-free code raise :class:`NBServerError` subclasses. The web layer turns
them into the JSON body ``{"message": ..., "reason": ...}`` with the error's status, in exactly one
place (:meth:`nbserver.web.BaseHandler.write_error`). Foreign exceptions (``OSError``, zmq,
jupyter_client, nbformat) are translated at the manager boundary with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "Gone",
    "NBServerError",
    "NotFound",
    "PayloadTooLarge",
]


class NBServerError(Exception):
    """An error with an HTTP status, a human message and a short machine-readable reason.

    ``reason`` is what clients switch on (jupyter_server uses values such as ``"bad format"``);
    ``None`` when there is nothing more specific than the status.
    """

    status: int = 500

    def __init__(self, message: str, reason: str | None = None, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, str | None]:
        return {"message": self.message, "reason": self.reason}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r}, reason={self.reason!r})"


class BadRequest(NBServerError):
    status = 400


class Forbidden(NBServerError):
    status = 403


class NotFound(NBServerError):
    status = 404


class Conflict(NBServerError):
    status = 409


class Gone(NBServerError):
    status = 410


class PayloadTooLarge(NBServerError):
    status = 413


class ConfigError(ValueError):
    """Invalid configuration: raised before the server starts, never sent to a client."""

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
    ``None`` when there is nothing more specific than the status. ``short_message``, when set,
    is a few words for a UI's status line (jupyter_server sends one with some errors, such as
    ``"<name> not found"`` for an unknown kernelspec); the body carries it only then.
    """

    status: int = 500

    def __init__(
        self,
        message: str,
        reason: str | None = None,
        *,
        status: int | None = None,
        short_message: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.short_message = short_message
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, str | None]:
        """The response body: ``{"message", "reason"}``, and ``short_message`` when set."""
        body = {"message": self.message, "reason": self.reason}
        if self.short_message is not None:
            body["short_message"] = self.short_message
        return body

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

"""nbserver: a small, fast, strict server for the Jupyter Server REST and kernel-websocket API.

Importing this package reads nothing and starts nothing. The public surface is ``__all__``.
"""

from ._version import __version__
from .app import make_app, make_context
from .config import ServerConfig
from .context import ServerContext
from .errors import (
    BadRequest,
    ConfigError,
    Conflict,
    Forbidden,
    Gone,
    NBServerError,
    NotFound,
    PayloadTooLarge,
)
from .routing import Route, mount
from .server import Server, run, serve
from .web import Access, APIHandler, BaseHandler, PageHandler

__all__ = [
    "APIHandler",
    "Access",
    "BadRequest",
    "BaseHandler",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "Gone",
    "NBServerError",
    "NotFound",
    "PageHandler",
    "PayloadTooLarge",
    "Route",
    "Server",
    "ServerConfig",
    "ServerContext",
    "__version__",
    "make_app",
    "make_context",
    "mount",
    "run",
    "serve",
]

"""The built-in web UI: the pages' handlers and routes; the browser side is ``nbserver/static``."""

from .assets import TEMPLATE_METHODS
from .handlers import routes

__all__ = ["TEMPLATE_METHODS", "routes"]

"""Routes are data.

A :class:`Route` names its URL with an OpenAPI path template (``/api/kernels/{kernel_id}``), the
same string that appears in ``api.yaml``; :func:`mount` compiles templates into tornado URL
patterns under a prefix. Each template parameter matches one path segment unless the route gives
it a pattern of its own (``params={"path": r"(?:/.+)?"}``). Matched parameters reach the handler
method as keyword arguments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tornado.routing import URLSpec
from tornado.web import RequestHandler

__all__ = ["Route", "mount"]

_PARAM = re.compile(r"\{([A-Za-z_]\w*)\}")


@dataclass(frozen=True)
class Route:
    """One URL template served by one handler class.

    Args:
        template: OpenAPI path template, relative to the mount prefix, starting with ``/``.
        handler: the tornado handler class.
        kwargs: passed to the handler's ``initialize``.
        params: regular expressions for template parameters (default: one path segment).
        documented: False only for generic fallbacks (trailing-slash redirect, 404) that are
            not paths of the API contract.
    """

    template: str
    handler: type[RequestHandler]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    documented: bool = True

    def pattern(self) -> str:
        """The template as a regular expression (without anchors)."""
        out, pos = [], 0
        for match in _PARAM.finditer(self.template):
            out.append(re.escape(self.template[pos : match.start()]))
            name = match.group(1)
            out.append(f"(?P<{name}>{self.params.get(name, '[^/]+')})")
            pos = match.end()
        out.append(re.escape(self.template[pos:]))
        return "".join(out)


def mount(prefix: str, routes: Iterable[Route]) -> list[URLSpec]:
    """Tornado URL specs for ``routes`` under ``prefix`` (``"/"`` or ``"/some/base/"``)."""
    base = "/" + prefix.strip("/") if prefix.strip("/") else ""
    specs = []
    for route in routes:
        specs.append(URLSpec(re.escape(base) + route.pattern(), route.handler, dict(route.kwargs)))
    return specs

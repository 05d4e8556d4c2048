"""``/api/config/<section>``: GET the merged section, PUT replaces it (204), PATCH deep-merges
(200 with the merged section; ``null`` deletes a key), as jupyter_server's config API."""

from __future__ import annotations

from ...context import ServerContext
from ...routing import Route
from ...web import Access, APIHandler
from .manager import ConfigSections

__all__ = ["ConfigHandler", "routes"]


class ConfigHandler(APIHandler):
    access = Access.USER

    def initialize(self, ctx: ServerContext, sections: ConfigSections) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.sections = sections

    async def get(self, section: str) -> None:
        self.write_json(await self.sections.get(section))

    async def put(self, section: str) -> None:
        await self.sections.set(section, self.json_body())
        self.set_status(204)
        self.finish()

    async def patch(self, section: str) -> None:
        self.write_json(await self.sections.update(section, self.json_body()))


def routes(ctx: ServerContext, sections: ConfigSections) -> list[Route]:
    return [Route("/api/config/{section}", ConfigHandler, {"ctx": ctx, "sections": sections})]

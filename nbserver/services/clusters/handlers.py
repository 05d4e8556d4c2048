"""``/api/clusters`` (IPython Parallel): list, one, start (body ``{"n": 2}``), stop."""

from __future__ import annotations

import re

from ...context import ServerContext
from ...errors import BadRequest
from ...routing import Route
from ...web import Access, APIHandler
from .manager import ClusterManager

__all__ = ["routes"]

_ID = {"cluster_id": r"[^/]+"}
_DIGITS = re.compile(r"[0-9]+")


class ClustersBase(APIHandler):
    access = Access.USER

    def initialize(self, ctx: ServerContext, clusters: ClusterManager) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.clusters = clusters


class ClustersHandler(ClustersBase):
    async def get(self) -> None:
        self.write_json(await self.clusters.models())


class ClusterHandler(ClustersBase):
    async def get(self, cluster_id: str) -> None:
        self.write_json(await self.clusters.model(cluster_id))


class StartHandler(ClustersBase):
    async def post(self, cluster_id: str) -> None:
        """Optional body ``{"n": <engines>}``; ``?n=`` as the classic notebook also works (the
        body wins). An empty ``?n=`` is the default count, as the classic notebook read it."""
        body = self.json_body()
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object", reason="bad model")
        n = body.get("n")
        query = self.get_query_argument("n", None)
        if n is None and query:
            if not _DIGITS.fullmatch(query):  # not str.isdigit: "²" is a digit int() refuses
                raise BadRequest("n must be a positive integer", reason="bad model")
            n = int(query)
        self.write_json(await self.clusters.start(cluster_id, n))


class StopHandler(ClustersBase):
    async def post(self, cluster_id: str) -> None:
        self.write_json(await self.clusters.stop(cluster_id))


def routes(ctx: ServerContext, clusters: ClusterManager) -> list[Route]:
    kw = {"ctx": ctx, "clusters": clusters}
    return [
        Route("/api/clusters", ClustersHandler, kw),
        Route("/api/clusters/{cluster_id}", ClusterHandler, kw, params=_ID),
        Route("/api/clusters/{cluster_id}/start", StartHandler, kw, params=_ID),
        Route("/api/clusters/{cluster_id}/stop", StopHandler, kw, params=_ID),
    ]

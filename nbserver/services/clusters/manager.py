"""IPython Parallel clusters: one per IPython profile, plus those ipyparallel recorded on disk.

ipyparallel is an optional extra (``nbserver[parallel]``); this module imports it. A cluster's
id is its profile's name for the profile's default cluster (ipyparallel's ``cluster_id ""``,
the one ``ipyparallel.Client(profile=...)`` connects to), and ``<profile>:<cluster_id>`` for
other clusters found in ``<profile_dir>/security/cluster-*.json``. Profiles are the
``profile_*`` directories of the IPython directory; ``default`` is always listed.

Starting a cluster runs a controller and ``n`` local engines (ipyparallel's launchers, as
``ipcluster start``); stopping it stops both, and the clusters this manager started are stopped
with it (when the server stops).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from ...errors import BadRequest, Conflict, NBServerError, NotFound

__all__ = ["ClusterManager"]

log = logging.getLogger("nbserver.clusters")


class ClusterFailed(NBServerError):
    """The controller or the engines could not be started or stopped: 503 ``"cluster failed"``."""

    status = 503


def _ipyparallel() -> Any:
    import ipyparallel  # type: ignore[import-untyped]

    return ipyparallel


class ClusterManager:
    """The clusters of the IPython directory ``ipython_dir`` (default: IPython's own,
    ``$IPYTHONDIR`` or ``~/.ipython``)."""

    def __init__(self, ipython_dir: Path | None = None) -> None:
        self._ipython_dir = ipython_dir
        self._clusters: dict[str, Any] = {}  # id -> ipyparallel.Cluster, those we touched
        self._started: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def ipython_dir(self) -> Path:
        if self._ipython_dir is not None:
            return self._ipython_dir
        from IPython.paths import get_ipython_dir

        return Path(get_ipython_dir())

    # -- discovery ---------------------------------------------------------------------------

    def _discover(self) -> dict[str, Any]:
        """Every cluster by id (blocking: reads the profile directories)."""
        Cluster = _ipyparallel().Cluster
        found: dict[str, Any] = {}
        root = self.ipython_dir
        profiles = {"default": root / "profile_default"}
        if root.is_dir():
            for entry in root.iterdir():
                if entry.is_dir() and entry.name.startswith("profile_"):
                    profiles[entry.name[len("profile_") :]] = entry
        known_files = {c.cluster_file: key for key, c in self._clusters.items()}
        for profile, directory in sorted(profiles.items()):
            found[profile] = self._clusters.get(profile) or Cluster(profile_dir=str(directory), cluster_id="")
            for file in sorted((directory / "security").glob("cluster-*.json")):
                if str(file) in known_files:
                    key = known_files[str(file)]
                    found[key] = self._clusters[key]
                    continue
                try:
                    cluster = Cluster.from_file(str(file))
                except Exception as exc:  # a stale or foreign file
                    log.warning("Cannot read cluster file %s: %s", file, exc)
                    continue
                key = profile if cluster.cluster_id == "" else f"{profile}:{cluster.cluster_id}"
                found[key] = cluster
        return found

    async def _all(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._discover)

    async def _get(self, cluster_id: str) -> Any:
        cluster = (await self._all()).get(cluster_id)
        if cluster is None:
            raise NotFound(f"No such cluster: {cluster_id}", reason="no such cluster")
        return cluster

    # -- models ------------------------------------------------------------------------------

    @staticmethod
    def _model(cluster_id: str, cluster: Any) -> dict[str, Any]:
        running = bool(cluster._is_running())
        n = sum(getattr(engines, "n", 0) or 0 for engines in cluster.engines.values()) if running else None
        return {
            "id": cluster_id,
            "profile": cluster_id.split(":", 1)[0],
            "cluster_id": cluster.cluster_id,
            "profile_dir": cluster.profile_dir,
            "status": "running" if running else "stopped",
            "n": n,
        }

    async def models(self) -> list[dict[str, Any]]:
        """``[{"id", "profile", "cluster_id", "profile_dir", "status", "n"}]`` sorted by id;
        ``status`` is ``"running"`` or ``"stopped"``, ``n`` the engines of a running cluster."""
        return [self._model(key, cluster) for key, cluster in sorted((await self._all()).items())]

    async def model(self, cluster_id: str) -> dict[str, Any]:
        """One cluster's model. Raises NotFound."""
        return self._model(cluster_id, await self._get(cluster_id))

    # -- start and stop ----------------------------------------------------------------------

    async def start(self, cluster_id: str, n: Any = None) -> dict[str, Any]:
        """Start the controller and ``n`` engines (default: one per CPU); ``n`` is the client's
        value as it came (an integral float counts as that integer).

        Raises:
            NotFound: no such cluster. BadRequest: ``n`` is not a positive integer.
            Conflict: the cluster is running. ClusterFailed: ipyparallel could not start it.
        """
        if isinstance(n, float) and n.is_integer():
            n = int(n)  # 2.0 is the number 2 (JSON does not tell them apart)
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise BadRequest("n must be a positive integer", reason="bad model")
        async with self._lock(cluster_id):
            cluster = await self._get(cluster_id)
            if cluster._is_running():
                raise Conflict(f"Cluster {cluster_id} is already running", reason="cluster running")
            count = n or os.cpu_count() or 1
            fresh = _ipyparallel().Cluster(
                profile_dir=cluster.profile_dir, cluster_id=cluster.cluster_id, n=count, shutdown_atexit=True
            )
            try:
                await fresh.start_cluster(count)
            except Exception as exc:
                log.warning("Cluster %s failed to start: %s", cluster_id, exc)
                await _quietly(fresh.stop_cluster())
                raise ClusterFailed(
                    f"Cluster {cluster_id} failed to start: {exc}", reason="cluster failed"
                ) from exc
            self._clusters[cluster_id] = fresh
            self._started.add(cluster_id)
            log.info("Cluster %s started with %d engines", cluster_id, count)
            return self._model(cluster_id, fresh)

    async def stop(self, cluster_id: str) -> dict[str, Any]:
        """Stop the engines and the controller. Raises NotFound, Conflict (not running)."""
        async with self._lock(cluster_id):
            cluster = await self._get(cluster_id)
            if not cluster._is_running():
                raise Conflict(f"Cluster {cluster_id} is not running", reason="cluster stopped")
            try:
                await cluster.stop_cluster()
            except Exception as exc:
                raise ClusterFailed(
                    f"Cluster {cluster_id} failed to stop: {exc}", reason="cluster failed"
                ) from exc
            self._started.discard(cluster_id)
            log.info("Cluster %s stopped", cluster_id)
            return self._model(cluster_id, cluster)

    async def shutdown(self) -> None:
        """Stop the clusters this manager started (the server is stopping)."""
        for cluster_id in list(self._started):
            cluster = self._clusters.get(cluster_id)
            if cluster is not None and cluster._is_running():
                log.info("Stopping cluster %s", cluster_id)
                await _quietly(cluster.stop_cluster())
        self._started.clear()

    def _lock(self, cluster_id: str) -> asyncio.Lock:
        return self._locks.setdefault(cluster_id, asyncio.Lock())


async def _quietly(stopping: Any) -> None:
    try:
        await stopping
    except Exception as exc:
        log.warning("Stopping a cluster failed: %s", exc)

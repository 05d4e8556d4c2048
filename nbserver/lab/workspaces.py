"""``/lab/api/workspaces``: JupyterLab's saved layouts, one JSON file per workspace.

A workspace ``lab`` is stored in the user's workspaces directory as
``<slug>.jupyterlab-workspace``, where the slug is jupyterlab_server's (the lowercased ASCII
name, then ``-`` and the first 4 hex digits of the SHA-256 of the name), so workspaces saved by
one server are found by the other. The document is ``{"data": {...}, "metadata": {"id": "/<name>"}}``;
``created`` and ``last_modified`` in the metadata come from the file when it is read.

The URL names the workspace: a PUT stores the body under ``<name>`` with ``metadata.id`` set to
``/<name>``, whatever id the body carries (jupyterlab_server refuses a body whose id differs with
a 400, for a body that its own schema allows). ``/lab/api/workspaces`` itself is read-only:
PUT and DELETE there are 405 with ``Allow`` (jupyterlab_server answers 400).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import unicodedata
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tornado.web import HTTPError

from ..context import ServerContext, isoformat
from ..errors import BadRequest, NBServerError, NotFound
from ..services.contents.fileio import atomic_write
from ..web import Access, APIHandler, BaseHandler

__all__ = ["WORKSPACE_SUFFIX", "WorkspacesHandler", "WorkspacesStore", "read_only_collection", "slugify"]

WORKSPACE_SUFFIX = ".jupyterlab-workspace"
_MAX_SLUG = 128 - len(WORKSPACE_SUFFIX)


def slugify(name: str) -> str:
    """The file name stem of workspace ``name`` (``"default"`` -> ``"default-37a8"``)."""
    raw = name if name.startswith("/") else "/" + name
    signature = "-" + hashlib.sha256(raw[1:].encode("utf-8")).hexdigest()[:4]
    value = urllib.parse.unquote(raw.lower())
    value = unicodedata.normalize("NFKC", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip()
    value = re.sub(r"[-\s]+", "-", value)
    return value[: _MAX_SLUG - len(signature)] + signature


def _stamp(seconds: float) -> str:
    return isoformat(datetime.fromtimestamp(seconds, timezone.utc))


def _workspace_id(name: str) -> str:
    return name if name.startswith("/") else "/" + name


def read_only_collection(handler: BaseHandler, item: str) -> None:
    """For a handler mounted on a collection URL and on its items' URLs (the item in path
    argument ``item``): on the collection only GET exists. Call it at the end of ``prepare``:
    other methods are answered 405 there, with ``Allow: GET, OPTIONS``."""
    if handler.path_kwargs.get(item):
        return
    handler.SUPPORTED_METHODS = ("GET", "OPTIONS")  # what the 405's Allow header lists
    if not handler.answered and handler.request.method not in handler.SUPPORTED_METHODS:
        handler.answer_after_body(HTTPError(405))


class WorkspacesStore:
    """Workspaces in ``directory`` (created on the first save)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        return self.directory / (slugify(name) + WORKSPACE_SUFFIX)

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        st = path.stat()
        workspace = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(workspace, dict) or not isinstance(workspace.get("metadata"), dict):
            raise ValueError("not a workspace document")
        workspace["metadata"].update(last_modified=_stamp(st.st_mtime), created=_stamp(st.st_ctime))
        return workspace

    def _list(self) -> dict[str, Any]:
        ids, values = [], []
        paths = sorted(self.directory.glob("*" + WORKSPACE_SUFFIX)) if self.directory.is_dir() else []
        for path in paths:
            try:
                workspace = self._read(path)
            except (OSError, ValueError):
                continue  # a half-written or foreign file is not a workspace
            ids.append(workspace["metadata"].get("id"))
            values.append(workspace)
        return {"workspaces": {"ids": ids, "values": values}}

    def _load(self, name: str) -> dict[str, Any]:
        path = self._path(name)
        try:
            return self._read(path)
        except FileNotFoundError:
            return {"data": {}, "metadata": {"id": _workspace_id(name)}}
        except (OSError, ValueError) as exc:
            raise NBServerError(f"Cannot read workspace {name!r}: {exc}", reason="bad workspace") from exc

    def _save(self, name: str, workspace: Any) -> None:
        metadata = workspace.get("metadata") if isinstance(workspace, dict) else None
        if not isinstance(metadata, dict) or not isinstance(metadata.get("id"), str):
            raise BadRequest("A workspace is {data, metadata: {id}}", reason="bad workspace")
        if not isinstance(workspace.get("data"), dict):  # required, as api.yaml says (was optional)
            raise BadRequest("A workspace's data is an object", reason="bad workspace")
        stored = {**workspace, "metadata": {**metadata, "id": _workspace_id(name)}}  # the URL names it
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic_write(str(self._path(name)), json.dumps(stored).encode("utf-8"), None)
        except OSError as exc:
            raise NBServerError(f"Cannot save workspace {name!r}: {exc.strerror}") from exc

    def _delete(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            raise NotFound(f"Workspace {name!r} not found", reason="no such workspace") from None
        except OSError as exc:
            raise NBServerError(f"Cannot delete workspace {name!r}: {exc.strerror}") from exc

    async def list(self) -> dict[str, Any]:
        """``{"workspaces": {"ids": [...], "values": [...]}}``, by file name."""
        return await asyncio.to_thread(self._list)

    async def load(self, name: str) -> dict[str, Any]:
        """The workspace, or an empty one (``{"data": {}, "metadata": {"id": "/<name>"}}``)."""
        return await asyncio.to_thread(self._load, name)

    async def save(self, name: str, workspace: Any) -> None:
        """Store ``workspace`` as ``name`` (its ``metadata.id`` becomes ``/<name>``);
        BadRequest (``"bad workspace"``) unless it is ``{data: {...}, metadata: {id: <string>}}``."""
        await asyncio.to_thread(self._save, name, workspace)

    async def delete(self, name: str) -> None:
        """Remove the workspace; NotFound when there is none."""
        await asyncio.to_thread(self._delete, name)


class WorkspacesHandler(APIHandler):
    """``GET /lab/api/workspaces``; ``GET|PUT|DELETE /lab/api/workspaces/<name>`` (204); see the
    module docstring for the name and the 405s."""

    access = Access.USER

    def initialize(self, ctx: ServerContext, store: WorkspacesStore) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.store = store

    async def prepare(self) -> None:
        await super().prepare()
        read_only_collection(self, "name")

    async def get(self, name: str = "") -> None:
        self.write_json(await (self.store.load(name) if name else self.store.list()))

    async def put(self, name: str) -> None:
        await self.store.save(name, self.json_body())
        self.set_status(204)
        self.finish()

    async def delete(self, name: str) -> None:
        await self.store.delete(name)
        self.set_status(204)
        self.finish()

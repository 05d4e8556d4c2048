"""Notebook export through nbconvert: the exporters, and a notebook converted to one format.

nbconvert is an optional extra (``nbserver[nbconvert]``): mount this module only when it is
installed (see :mod:`.service`). nbconvert and nbformat are imported on first use, in a worker
thread (with jsonschema they take seconds to import: not at start-up, not on the event loop).
Exporters run in a worker thread too: they read templates and may call pandoc or LaTeX, which
must not block the event loop.

An export is the exporter's output as bytes with its media type, or, when the exporter wrote
extra files (images of a Markdown export), a zip of the output and those files, as
jupyter_server answers.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import logging
import os
import re
import sys
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_dir

from ...errors import BadRequest, NBServerError, NotFound
from ..contents.manager import ContentsManager

__all__ = ["Export", "NbconvertManager"]

log = logging.getLogger("nbserver.nbconvert")

DATE_FORMAT = "%B %d, %Y" if sys.platform == "win32" else "%B %-d, %Y"


def _exporters() -> Any:
    """``nbconvert.exporters.base`` (imported on first use: call from a worker thread)."""
    return importlib.import_module("nbconvert.exporters.base")


@dataclass(frozen=True)
class Export:
    """A converted notebook: ``body`` bytes of type ``mimetype`` (None when the exporter names
    none), to be saved as ``filename``; ``zipped`` when the body is a zip of several files."""

    body: bytes
    mimetype: str | None
    filename: str
    zipped: bool


class ConversionFailed(NBServerError):
    """The exporter could not convert this notebook (a missing pandoc or LaTeX, a notebook it
    cannot read): 422, reason ``"nbconvert failed"``."""

    status = 422


class NbconvertManager:
    """Exports notebooks of ``contents``.

    Args:
        contents: where stored notebooks are read.
        root_dir: the local directory behind ``contents``, if any: exporters then resolve a
            notebook's relative resources (``![](img.png)``) next to it.
    """

    def __init__(self, contents: ContentsManager, root_dir: Path | None = None) -> None:
        self.contents = contents
        self.root_dir = root_dir
        self._lock = asyncio.Lock()

    async def exporters(self) -> dict[str, dict[str, Any]]:
        """``{name: {"output_mimetype"}}`` of every installed exporter (jupyter_server's
        ``/api/nbconvert`` model); exporters that fail to load are left out."""

        def load() -> dict[str, dict[str, Any]]:
            found = {}
            exporters = _exporters()
            for name in exporters.get_export_names():
                try:
                    exporter = exporters.get_exporter(name)
                except Exception as exc:  # a broken third-party entry point
                    log.warning("Exporter %s cannot be loaded: %s", name, exc)
                    continue
                found[name] = {"output_mimetype": exporter.output_mimetype}
            return found

        async with self._lock:  # entry points are scanned once at a time
            return await asyncio.to_thread(load)

    async def export_path(
        self, format: str, path: str, *, sanitize_html: bool | None = None
    ) -> Export | None:
        """Export the stored notebook at ``path`` to ``format``; None when ``path`` is a file
        that is not a notebook (the caller serves it as it is).

        Raises:
            NotFound: no such exporter (reason ``"no such exporter"``), or no such file.
            BadRequest: a notebook that cannot be read.
            ConversionFailed: the exporter failed.
        """
        exporter_class = await asyncio.to_thread(_exporter_class, format)
        model = await self.contents.get(path)
        if model["type"] == "directory":
            raise NotFound(f"{path!r} is a directory, not a notebook", reason="not a notebook")
        if model["type"] != "notebook":
            return None
        name = model["name"]
        metadata: dict[str, Any] = {"name": os.path.splitext(name)[0]}
        modified = _parse_date(model.get("last_modified"))
        if modified is not None:
            metadata["modified_date"] = modified.strftime(DATE_FORMAT)
        if self.root_dir is not None:
            metadata["path"] = str(self.root_dir / os.path.dirname(model["path"]))
        options = {"sanitize_html": sanitize_html} if sanitize_html is not None else {}
        return await _convert(exporter_class, model["content"], name, metadata, options)

    async def export_model(self, format: str, name: str, content: Any) -> Export:
        """Export a notebook sent by the client (``content``: the notebook's JSON, as
        jupyter_server's POST takes it) named ``name``.

        Raises:
            NotFound: no such exporter.
            BadRequest: ``content`` is not a notebook.
            ConversionFailed: the exporter failed.
        """
        exporter_class = await asyncio.to_thread(_exporter_class, format)
        if not isinstance(content, dict) or not isinstance(content.get("cells", []), list):
            raise BadRequest("content must be a notebook (a JSON object with cells)", reason="bad notebook")
        stem = name[: name.rfind(".")] if "." in name else name
        return await _convert(exporter_class, content, name, {"name": stem}, {})


def _exporter_class(format: str) -> type[Any]:
    """The exporter named ``format`` (in a worker thread: it may import nbconvert). Raises
    NotFound (``"no such exporter"``) for a name that is not one word: nbconvert would import a
    dotted name as a module."""
    if not re.fullmatch(r"\w+", format):
        raise NotFound(f"No exporter for format: {format}", reason="no such exporter")
    try:
        return _exporters().get_exporter(format)  # type: ignore[no-any-return]
    except (KeyError, NameError, ValueError) as exc:
        raise NotFound(f"No exporter for format: {format}", reason="no such exporter") from exc


def _parse_date(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


async def _convert(
    exporter_class: type[Any],
    content: dict[str, Any],
    name: str,
    metadata: dict[str, Any],
    options: dict[str, Any],
) -> Export:
    def run() -> Export:
        try:
            # as a file: multi-line strings may be lists, older nbformats are upgraded
            nbformat = importlib.import_module("nbformat")
            notebook = nbformat.reads(json.dumps(content), as_version=4)
            exporter = exporter_class(**options)
            output, resources = exporter.from_notebook_node(
                notebook, resources={"metadata": metadata, "config_dir": jupyter_config_dir()}
            )
        except Exception as exc:
            log.warning("nbconvert to %s failed for %s: %r", exporter_class.__name__, name, exc)
            raise ConversionFailed(f"nbconvert failed: {exc}", reason="nbconvert failed") from exc
        body = output if isinstance(output, bytes) else str(output).encode("utf-8")
        stem = os.path.splitext(name)[0]
        extension = resources.get("output_extension") or ""
        files = resources.get("outputs") or {}
        if not files:
            return Export(body, exporter.output_mimetype or None, stem + extension, zipped=False)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(stem + extension, body)
            for filename, data in files.items():
                archive.writestr(os.path.basename(filename), data)
        return Export(buffer.getvalue(), "application/zip", stem + ".zip", zipped=True)

    return await asyncio.to_thread(run)

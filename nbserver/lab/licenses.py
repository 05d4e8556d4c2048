"""``/lab/api/licenses``, ``/lab/api/listings``, ``/lab/api/build``: the small read-only APIs.

Licenses: the ``third-party-licenses.json`` reports that the UI bundles ship (the application's
``static/`` and each prebuilt extension's ``static/``), grouped by bundle (the npm package name),
as ``json`` (``{"bundles": {name: {"packages": [...]}}}``), ``csv`` or ``markdown``;
``?bundles=<regex>`` filters bundles, ``?download=1`` makes it an attachment.

Listings: the extension manager's allow/block lists; nbserver has none (all four lists empty).

Build: nbserver hosts prebuilt UIs and never builds one; the page config says
``buildAvailable: false`` (so JupyterLab never asks), ``GET`` reports a stable build, and the
route has no ``POST`` (build) or ``DELETE`` (cancel): 405 with ``Allow: GET, OPTIONS``. (JupyterLab
itself answers 500 to both when it cannot build: "Please install nodejs", "No current build".)
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..context import ServerContext
from ..errors import BadRequest
from ..web import Access, APIHandler
from .discovery import Extension

__all__ = ["BuildHandler", "Licenses", "LicensesHandler", "ListingsHandler", "report"]

LICENSES_FILE = "third-party-licenses.json"
FORMATS = {"json": "application/json", "csv": "text/csv", "markdown": "text/markdown"}


def _packages(directory: Path) -> list[Any]:
    for candidate in (directory / LICENSES_FILE, directory / "static" / LICENSES_FILE):
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        packages = data.get("packages") if isinstance(data, dict) else None
        if isinstance(packages, list):
            return packages
    return []


def report(bundles: Mapping[str, Any], fmt: str, full_text: bool = True) -> str:
    """The licenses of ``bundles`` (``{name: {"packages": [...]}}``) in ``fmt``."""
    if fmt == "json":
        return json.dumps({"bundles": bundles}, indent=2, sort_keys=True)
    if fmt == "csv":
        out = io.StringIO()
        fields = ["name", "versionInfo", "licenseId", "extractedText"]
        writer = csv.DictWriter(out, fieldnames=["bundle", *fields])
        writer.writeheader()
        for name, bundle in bundles.items():
            for package in bundle["packages"]:
                writer.writerow({"bundle": name, **{f: package.get(f, "") for f in fields}})
        return out.getvalue()
    lines: list[str] = []
    for name, bundle in bundles.items():
        lines += [f"# {name}", ""]
        if not bundle["packages"]:
            lines += ["> No licenses found", ""]
        for package in bundle["packages"]:
            name, version = package.get("name", ""), package.get("versionInfo", "")
            lines.append(f"## **{name}**\t`{version}`\t{package.get('licenseId', '')}")
            if full_text:
                text = package.get("extractedText", "")
                lines += (
                    ["", "<pre/>", text, "</pre>", ""] if text else ["", "> No license text available", ""]
                )
    return "\n".join(lines)


class Licenses:
    """The bundles to report: the application's (named after its ``static/package.json``) and
    the prebuilt extensions'."""

    def __init__(self, app_static: Path | None, extensions: Mapping[str, Extension]) -> None:
        self.app_static = app_static
        self.extensions = extensions

    def _bundles(self, pattern: str) -> dict[str, Any]:
        try:
            wanted = re.compile(pattern)
        except re.error as exc:
            raise BadRequest(f"Bad bundles pattern {pattern!r}: {exc}", reason="bad pattern") from None
        bundles: dict[str, Any] = {}
        if self.app_static is not None:
            try:
                name = json.loads((self.app_static / "package.json").read_text(encoding="utf-8"))["name"]
            except (OSError, ValueError, KeyError, TypeError):
                name = None
            if isinstance(name, str) and wanted.match(name):
                bundles[name] = {"packages": _packages(self.app_static)}
        for name, extension in sorted(self.extensions.items()):
            if wanted.match(name):
                bundles[name] = {"packages": _packages(extension.path)}
        return bundles

    async def bundles(self, pattern: str = ".*") -> dict[str, Any]:
        """``{bundle: {"packages": [...]}}`` for bundles whose name matches ``pattern``."""
        return await asyncio.to_thread(self._bundles, pattern)


class LicensesHandler(APIHandler):
    access = Access.USER

    def initialize(self, ctx: ServerContext, licenses: Licenses) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.licenses = licenses

    async def get(self) -> None:
        fmt = self.get_query_argument("format", "json")
        if fmt not in FORMATS:
            raise BadRequest(f"Unsupported report format {fmt!r}", reason="bad format")
        full_text = self.get_query_argument("full_text", "true").lower() not in ("false", "0")
        download = self.get_query_argument("download", "0").lower() in ("1", "true")
        text = report(await self.licenses.bundles(self.get_query_argument("bundles", ".*")), fmt, full_text)
        if download:
            suffix = {"json": ".json", "csv": ".csv", "markdown": ".md"}[fmt]
            self.set_header("Content-Disposition", f'attachment; filename="jupyterlab-licenses{suffix}"')
        self.set_header("Content-Type", FORMATS[fmt] + "; charset=UTF-8")
        self.finish(text.encode("utf-8"))


class ListingsHandler(APIHandler):
    """``/lab/api/listings/@jupyterlab/extensionmanager-extension/listings.json``."""

    access = Access.USER

    def get(self, path: str) -> None:
        self.write_json(
            {
                "blocked_extensions_uris": [],
                "allowed_extensions_uris": [],
                "blocked_extensions": [],
                "allowed_extensions": [],
            }
        )


class BuildHandler(APIHandler):
    """``/lab/api/build``: no builds here (GET only; see the module docstring)."""

    access = Access.USER

    def get(self) -> None:
        self.write_json(
            {"status": "stable", "message": "nbserver hosts prebuilt JupyterLab; it does not build"}
        )

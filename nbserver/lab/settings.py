"""``/lab/api/settings``: plugin schemas from the installed packages and the user's settings.

A plugin id is ``<package>:<plugin>`` (``@jupyterlab/apputils-extension:themes``). Its schema is
``<schemas>/<package>/<plugin>.json``, found in JupyterLab's application schemas directory or
in a prebuilt extension's ``schemas/`` (every ``labextensions`` directory); its version is the
``version`` of the ``package.json.orig`` next to it (``"N/A"`` without one). Defaults may be
overridden by the administrator: ``<app settings>/overrides.d/*.json[5]`` then
``overrides.json[5]``, ``{plugin id: {key: default}}``, merged with
:func:`~nbserver.services.config.manager.deep_merge` into the schema's ``default`` values.

User settings are JSON5 text in ``<user settings dir>/<package>/<plugin>.jupyterlab-settings``
(comments kept: the raw text is what the settings editor shows). A save is validated (it must
parse as JSON5 and satisfy the schema, Draft 7) before it is written, atomically. Stored settings
that no longer satisfy the schema are served as ``{}`` with a warning in the log, as
jupyterlab_server does, so that a stale file never keeps JupyterLab from starting.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..context import ServerContext, isoformat
from ..errors import BadRequest, NBServerError, NotFound
from ..services.config.manager import deep_merge
from ..services.contents.fileio import atomic_write
from ..web import Access, APIHandler
from .workspaces import read_only_collection

__all__ = ["SETTINGS_SUFFIX", "SettingsHandler", "SettingsStore", "load_overrides", "parse_json5"]

SETTINGS_SUFFIX = ".jupyterlab-settings"
log = logging.getLogger("nbserver.lab")


def _json5() -> Any:
    """The json5 module (a dependency of the ``[lab]`` extra, imported when first needed)."""
    try:
        import json5
    except ImportError as exc:  # pragma: no cover - the [lab] extra installs it
        raise NBServerError(
            "json5 is not installed: pip install 'nbserver[lab]'", reason="not installed"
        ) from exc
    return json5


def _jsonschema() -> Any:
    """jsonschema (imported when first needed: its import is slow, and most servers never
    validate settings)."""
    return importlib.import_module("jsonschema")


def _validate(schema: dict[str, Any], document: Any) -> str | None:
    """``None`` when ``document`` satisfies ``schema`` (Draft 7), else the first error's message."""
    jsonschema = _jsonschema()
    try:
        jsonschema.Draft7Validator(schema).validate(document)
    except jsonschema.ValidationError as exc:
        return str(exc.message)
    return None


def parse_json5(raw: str) -> Any:
    """``raw`` parsed as JSON5 (comments, trailing commas, unquoted keys); BadRequest
    (``"bad settings"``) for anything else."""
    try:
        return _json5().loads(raw)
    except (ValueError, TypeError, RecursionError) as exc:
        raise BadRequest(f"Settings are not valid JSON5: {exc}", reason="bad settings") from None


def load_overrides(app_settings_dir: Path | None) -> dict[str, Any]:
    """The administrator's default overrides, ``{plugin id: {key: value}}`` (see the module
    docstring for the files read and their order). Unreadable files are logged and skipped."""
    if app_settings_dir is None:
        return {}
    drop_ins = app_settings_dir / "overrides.d"
    files = sorted([*drop_ins.glob("*.json"), *drop_ins.glob("*.json5")]) if drop_ins.is_dir() else []
    files += [app_settings_dir / "overrides.json", app_settings_dir / "overrides.json5"]
    overrides: dict[str, Any] = {}
    for path in files:
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
            data = _json5().loads(text) if path.suffix == ".json5" else json.loads(text)
        except (OSError, ValueError) as exc:
            log.warning("Ignoring settings overrides in %s: %s", path, exc)
            continue
        for plugin, values in data.items() if isinstance(data, dict) else ():
            if isinstance(values, dict):
                deep_merge(overrides.setdefault(plugin, {}), values)
    return overrides


def _apply_overrides(schema: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    properties = schema.setdefault("properties", {})
    for key, value in overrides.items():
        prop = properties.get(key)
        if isinstance(prop, dict) and isinstance(prop.get("default"), dict) and isinstance(value, dict):
            deep_merge(prop["default"], value)
        elif isinstance(prop, dict):
            prop["default"] = value
        else:
            properties[key] = {"default": value}
    return schema


def _stamp(seconds: float) -> str:
    return isoformat(datetime.fromtimestamp(seconds, timezone.utc))


class SettingsStore:
    """Schemas (read once, then cached) and the user's settings files."""

    def __init__(
        self,
        schemas_dir: Path | None,
        user_settings_dir: Path,
        labextensions_path: Sequence[Path] = (),
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.schemas_dir = schemas_dir
        self.user_settings_dir = user_settings_dir
        self.labextensions_path = tuple(labextensions_path)
        self.overrides = overrides or {}
        self._index: dict[str, Path] | None = None
        self._schemas: dict[str, tuple[dict[str, Any], str]] = {}

    # -- schemas -----------------------------------------------------------------------------------

    def index(self) -> dict[str, Path]:
        """Plugin id -> schema file; the application's schemas first, then extensions' (the
        first directory on the path wins for an id both list)."""
        if self._index is None:
            index: dict[str, Path] = {}
            if self.schemas_dir is not None and self.schemas_dir.is_dir():
                for path in sorted(self.schemas_dir.rglob("*.json")):
                    package = path.parent.relative_to(self.schemas_dir).as_posix()
                    index.setdefault(f"{package}:{path.stem}", path)
            for root in self.labextensions_path:
                for path in sorted(root.glob("**/schemas/**/*.json")) if root.is_dir() else ():
                    parts = path.as_posix().split("/schemas/", 1)
                    package = Path(parts[1]).parent.as_posix()
                    index.setdefault(f"{package}:{path.stem}", path)
            self._index = index
        return self._index

    def schema(self, plugin: str) -> tuple[dict[str, Any], str]:
        """``(schema with overrides, version)``. NotFound for an unknown plugin id; 500 for a
        schema file that cannot be read or is not a valid schema."""
        cached = self._schemas.get(plugin)
        if cached is None:
            path = self.index().get(plugin)
            if path is None:
                raise NotFound(f"Schema not found: {plugin}", reason="no such plugin")
            jsonschema = _jsonschema()
            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
                jsonschema.Draft7Validator.check_schema(schema)
            except (OSError, ValueError, jsonschema.SchemaError) as exc:
                raise NBServerError(f"Bad schema for {plugin}: {exc}", reason="bad schema") from exc
            _apply_overrides(schema, copy.deepcopy(self.overrides.get(plugin, {})))
            version = "N/A"
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                version = str(json.loads((path.parent / "package.json.orig").read_text("utf-8"))["version"])
            cached = self._schemas[plugin] = (schema, version)
        return copy.deepcopy(cached[0]), cached[1]

    # -- user settings -----------------------------------------------------------------------------

    def _user_file(self, plugin: str) -> Path:
        package, _, name = plugin.partition(":")
        if not name or ".." in plugin.split("/") or "\\" in plugin or plugin.startswith("/"):
            raise NotFound(f"Settings not found: {plugin}", reason="no such plugin")
        return self.user_settings_dir / package / (name + SETTINGS_SUFFIX)

    def _read_user(self, plugin: str, schema: dict[str, Any]) -> dict[str, Any]:
        path = self._user_file(plugin)
        raw, settings, modified, created = "{}", {}, None, None  # type: tuple[str, Any, str | None, str | None]
        try:
            text = path.read_text(encoding="utf-8")
            st = path.stat()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise NBServerError(f"Cannot read settings of {plugin}: {exc.strerror}") from exc
        else:
            modified, created = _stamp(st.st_mtime), _stamp(st.st_ctime)
        if text.strip():
            problem: str | None
            try:
                parsed = _json5().loads(text)
            except ValueError as exc:
                parsed, problem = None, f"not JSON5: {exc}"
            else:
                problem = _validate(schema, parsed)
            if problem is None:
                raw, settings = text, parsed
            else:
                log.warning("Ignoring the stored settings of %s: %s", plugin, problem)
        return {"raw": raw, "settings": settings, "last_modified": modified, "created": created}

    def _get(self, plugin: str) -> dict[str, Any]:
        schema, version = self.schema(plugin)
        return {"id": plugin, "schema": schema, "version": version, **self._read_user(plugin, schema)}

    def _list(self, ids_only: bool) -> dict[str, Any]:
        ids = sorted(self.index(), reverse=True)
        if ids_only:
            return {"settings": [{"id": plugin} for plugin in ids]}
        return {"settings": [self._get(plugin) for plugin in ids]}

    def _save(self, plugin: str, raw: str) -> None:
        schema, _ = self.schema(plugin)
        parsed = parse_json5(raw)
        problem = _validate(schema, parsed)
        if problem is not None:
            raise BadRequest(f"Invalid settings for {plugin}: {problem}", reason="invalid settings")
        path = self._user_file(plugin)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(str(path), raw.encode("utf-8"), None)
        except OSError as exc:
            raise NBServerError(f"Cannot save settings of {plugin}: {exc.strerror}") from exc

    async def get(self, plugin: str) -> dict[str, Any]:
        """``{id, schema, version, raw, settings, last_modified, created}`` for one plugin."""
        return await asyncio.to_thread(self._get, plugin)

    async def list(self, ids_only: bool = False) -> dict[str, Any]:
        """``{"settings": [...]}``, every plugin by id (reverse order, as jupyterlab_server)."""
        return await asyncio.to_thread(self._list, ids_only)

    async def save(self, plugin: str, raw: str) -> None:
        """Validate and store ``raw`` (JSON5 text). BadRequest: ``"bad settings"`` (not JSON5)
        or ``"invalid settings"`` (against the schema); NotFound for an unknown plugin."""
        await asyncio.to_thread(self._save, plugin, raw)

    async def setting(self, plugin: str, key: str, default: Any = None) -> Any:
        """One user setting's value (``default`` when unset or unknown)."""
        try:
            model = await self.get(plugin)
        except NBServerError:
            return default
        return model["settings"].get(key, default)


#: ``Translations.schema_translator``: a coroutine giving the current language's schema
#: translator (a callable, so this module need not import :mod:`.translations`, which imports it)
Translator = Callable[[], Awaitable[Callable[[Mapping[str, Any]], dict[str, Any]]]]


class SettingsHandler(APIHandler):
    """``GET /lab/api/settings[?ids_only=true]``, ``GET|PUT /lab/api/settings/<plugin id>``
    (PUT body ``{"raw": "<JSON5 text>"}``, 204); other methods are 405 with ``Allow``."""

    access = Access.USER

    def initialize(  # type: ignore[override]
        self, ctx: ServerContext, store: SettingsStore, translator: Translator | None = None
    ) -> None:
        super().initialize(ctx)
        self.store = store
        self.translator = translator

    async def prepare(self) -> None:
        await super().prepare()
        read_only_collection(self, "plugin")  # PUT /lab/api/settings: 405 (was a 500)

    async def get(self, plugin: str = "") -> None:
        """Schemas come translated into the chosen language, as jupyterlab_server's (PUT
        validates against the untranslated schema)."""
        translate = await self.translator() if self.translator else dict
        if plugin:
            model = await self.store.get(plugin)
            model["schema"] = translate(model["schema"])
            self.write_json(model)
            return
        listing = await self.store.list(self.get_query_argument("ids_only", "") == "true")
        for model in listing["settings"]:
            if "schema" in model:
                model["schema"] = translate(model["schema"])
        self.write_json(listing)

    async def put(self, plugin: str) -> None:
        body = self.json_body()
        if not isinstance(body, dict) or not isinstance(body.get("raw"), str):
            raise BadRequest('The body must be {"raw": "<settings as JSON5>"}', reason="bad settings")
        await self.store.save(plugin, body["raw"])
        self.set_status(204)
        self.finish()

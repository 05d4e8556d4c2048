"""``/lab/api/translations``: the installed language packs and their message catalogues.

``GET /lab/api/translations`` lists English and every installed pack as
``{"data": {locale: {displayName, nativeName}}, "message": ""}`` (display names in the user's
current language, from babel when it is installed, else the locale code); ``GET
/lab/api/translations/<locale>`` gives ``{"data": {domain: catalogue}, "message": ""}``, the
pack's ``LC_MESSAGES/*.json`` files, which the frontend's translator uses as they are. English is
built in: asking for it (or for a locale with no pack) gives empty data and a message, as
jupyterlab_server does, and the frontend keeps its own strings. The user's choice itself is a
setting (``@jupyterlab/translation-extension:plugin``, key ``locale``), saved through the
settings API.

Settings schemas carry user-visible strings the frontend does not translate itself (the
settings editor's property titles and descriptions): :meth:`Translations.schema_translator`
gives the function that translates a schema into the current locale, with jupyterlab_server's
selectors and message contexts (:data:`SCHEMA_SELECTORS`), for the settings API to apply to the
schemas it serves.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..context import ServerContext
from ..web import Access, APIHandler
from .settings import SettingsStore

__all__ = [
    "DEFAULT_LOCALE",
    "LOCALE_SETTINGS",
    "SCHEMA_SELECTORS",
    "SchemaTranslator",
    "Translations",
    "TranslationsHandler",
    "display_names",
    "translate_schema",
]

DEFAULT_LOCALE = "en"
LOCALE_SETTINGS = "@jupyterlab/translation-extension:plugin"
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*")

#: A schema's translatable strings: JSON-pointer-like path patterns (``/``-joined keys, ``[i]``
#: for a list item) -> gettext context, as jupyterlab_server has them. A schema adds its own
#: (context ``schema``) in ``jupyter.lab.internationalization.selectors``, and names its catalogue
#: in ``jupyter.lab.internationalization.domain`` (default ``jupyterlab``).
SCHEMA_SELECTORS = {
    "properties/.*/title": "settings",
    "properties/.*/description": "settings",
    "definitions/.*/properties/.*/title": "settings",
    "definitions/.*/properties/.*/description": "settings",
    "title": "schema",
    "description": "schema",
    r"jupyter\.lab\.setting-icon-label": "settings",
    r"jupyter\.lab\.menus/.*/label": "menu",
    r"jupyter\.lab\.toolbars/.*/label": "toolbar",
}
_I18N = "jupyter.lab.internationalization"
_DEFAULT_DOMAIN = "jupyterlab"
_SELECTORS = [(re.compile("/" + pattern), context) for pattern, context in SCHEMA_SELECTORS.items()]

#: A function from a schema to its translation (a new object; the argument is not changed)
SchemaTranslator = Callable[[Mapping[str, Any]], dict[str, Any]]


def display_names(locale: str, display_locale: str) -> dict[str, str]:
    """``{"displayName", "nativeName"}`` of ``locale``, from babel when it is importable."""
    try:
        babel: Any = importlib.import_module("babel")
        parsed = babel.Locale.parse(locale)
        display = parsed.get_display_name(babel.Locale.parse(display_locale)) or locale
        native = parsed.get_display_name(parsed) or locale
    except Exception:  # no babel, or a locale it does not know
        return {"displayName": locale, "nativeName": locale}
    return {"displayName": str(display), "nativeName": str(native)}


def _pgettext(catalogue: Mapping[str, Any], context: str, message: str) -> str:
    """``message`` in ``context`` from a pack's JSON catalogue (``"<context>\\x04<message>":
    [translation, ...]``); ``message`` itself when it has no non-empty translation."""
    entry = catalogue.get(f"{context}\x04{message}")
    if isinstance(entry, list) and entry and isinstance(entry[0], str) and entry[0]:
        return entry[0]
    return message


def translate_schema(schema: Mapping[str, Any], catalogue: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` with the strings at :data:`SCHEMA_SELECTORS` paths (and the schema's
    own ``selectors``) translated through ``catalogue``, one domain's JSON catalogue. Strings
    without a translation, and everything not selected, are kept as they are."""
    own = schema.get(_I18N, {}).get("selectors", []) if isinstance(schema.get(_I18N), dict) else []
    selectors = _SELECTORS + [
        (re.compile("/" + pattern), "schema") for pattern in own if isinstance(pattern, str)
    ]

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, Mapping):
            return {key: walk(value, f"{path}/{key}") for key, value in node.items()}
        if isinstance(node, list):
            return [
                walk(item, f"{path}[{i}]") if isinstance(item, Mapping) else item
                for i, item in enumerate(node)
            ]
        if isinstance(node, str):
            for pattern, context in selectors:
                if pattern.fullmatch(path):
                    return _pgettext(catalogue, context, node)
        return node

    translated: dict[str, Any] = walk(schema, "")
    return translated


class Translations:
    """Language packs (locale -> ``LC_MESSAGES`` directory, from
    :func:`~nbserver.lab.discovery.language_pack_dirs`) and the current locale's setting."""

    def __init__(self, packs: Mapping[str, Path], settings: SettingsStore | None) -> None:
        self.packs = dict(packs)
        self.settings = settings
        self._loaded: dict[str, dict[str, Any]] = {}  # locale -> catalogues, for schemas

    async def current_locale(self) -> str:
        """The locale the user chose in the settings; English for ``default`` or an unknown one."""
        if self.settings is None:
            return DEFAULT_LOCALE
        locale = await self.settings.setting(LOCALE_SETTINGS, "locale", "default")
        if not isinstance(locale, str) or (locale not in self.packs and locale != DEFAULT_LOCALE):
            return DEFAULT_LOCALE
        return locale

    def _listing(self, display_locale: str) -> dict[str, Any]:
        data = {DEFAULT_LOCALE: display_names(DEFAULT_LOCALE, display_locale)}
        for locale in sorted(self.packs):
            data[locale] = display_names(locale, display_locale)
        return {"data": data, "message": ""}

    def _catalogues(self, locale: str) -> dict[str, Any]:
        directory = self.packs.get(locale)
        if directory is None:
            valid = _LOCALE.fullmatch(locale) is not None
            message = (
                f"Language pack '{locale}' not installed!"
                if valid
                else f"Language pack '{locale}' not valid!"
            )
            return {"data": {}, "message": message}
        data: dict[str, Any] = {}
        problems = []
        for path in sorted(directory.glob("*.json")):
            try:
                data[path.stem] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                problems.append(f"{path.name}: {exc}")
        return {"data": data, "message": "\n".join(problems)}

    async def schema_translator(self) -> SchemaTranslator:
        """The function translating a settings schema into the current locale (the identity
        for English); each schema's catalogue is its ``jupyter.lab.internationalization``
        domain's. The pack's catalogues are read once per locale, on first use."""
        locale = await self.current_locale()
        if locale == DEFAULT_LOCALE:
            return dict
        catalogues = self._loaded.get(locale)
        if catalogues is None:
            catalogues = self._loaded[locale] = (await asyncio.to_thread(self._catalogues, locale))["data"]

        def translate(schema: Mapping[str, Any]) -> dict[str, Any]:
            i18n = schema.get(_I18N)
            domain = i18n.get("domain", _DEFAULT_DOMAIN) if isinstance(i18n, dict) else _DEFAULT_DOMAIN
            catalogue = catalogues.get(domain)
            return translate_schema(schema, catalogue) if isinstance(catalogue, dict) else dict(schema)

        return translate

    async def listing(self) -> dict[str, Any]:
        """Every available language, named in the current one."""
        return await asyncio.to_thread(self._listing, await self.current_locale())

    async def catalogues(self, locale: str) -> dict[str, Any]:
        """The message catalogues of ``locale`` (``default`` is the current locale)."""
        if locale == "default":
            locale = await self.current_locale()
        return await asyncio.to_thread(self._catalogues, locale)


class TranslationsHandler(APIHandler):
    """``GET /lab/api/translations`` and ``GET /lab/api/translations/<locale>``; always 200
    (problems are in ``message``, as the frontend expects)."""

    access = Access.USER

    def initialize(self, ctx: ServerContext, translations: Translations) -> None:  # type: ignore[override]
        super().initialize(ctx)
        self.translations = translations

    async def get(self, locale: str = "") -> None:
        call: Callable[[], Any] = (
            (lambda: self.translations.catalogues(locale)) if locale else self.translations.listing
        )
        self.write_json(await call())

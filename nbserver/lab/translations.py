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

__all__ = ["DEFAULT_LOCALE", "LOCALE_SETTINGS", "Translations", "TranslationsHandler", "display_names"]

DEFAULT_LOCALE = "en"
LOCALE_SETTINGS = "@jupyterlab/translation-extension:plugin"
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*")


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


class Translations:
    """Language packs (locale -> ``LC_MESSAGES`` directory, from
    :func:`~nbserver.lab.discovery.language_pack_dirs`) and the current locale's setting."""

    def __init__(self, packs: Mapping[str, Path], settings: SettingsStore | None) -> None:
        self.packs = dict(packs)
        self.settings = settings

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

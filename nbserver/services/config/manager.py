"""Frontend configuration sections (``/api/config/<section>``), stored as JSON files.

Layout (as jupyter_server's ``ConfigManager``): a section ``notebook`` is read from
``<dir>/nbconfig/notebook.json`` and ``<dir>/nbconfig/notebook.d/*.json`` of every Jupyter config
directory, system directories first, the user's last (so the user's keys win, merged with
:func:`deep_merge`); packages drop their defaults into the ``.d`` directories (ipywidgets'
``load_extensions``). Writes go to the user's ``<config_dir>/nbconfig/<section>.json`` only,
atomically.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import BadRequest, NBServerError, NotFound
from ..contents.fileio import atomic_write

__all__ = ["SECTION_NAME", "ConfigSections", "deep_merge"]

#: a section name, as jupyter_server's route (``\w+``)
SECTION_NAME = re.compile(r"\w+", re.ASCII)


def deep_merge(target: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into ``target`` in place and return it: nested objects merge key by key,
    any other value replaces, and a ``None`` (JSON ``null``) value deletes the key."""
    for key, value in update.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        elif isinstance(value, dict):
            target[key] = deep_merge({}, value)  # nulls inside a new object delete nothing
        else:
            target[key] = value
    return target


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise NBServerError(f"Cannot read config file {path}: {exc}", reason="bad config") from exc
    if not isinstance(data, dict):
        raise NBServerError(f"Config file {path} does not hold a JSON object", reason="bad config")
    return data


class ConfigSections:
    """The sections under ``nbconfig/`` of ``config_path`` (the user's directory first, as
    ``jupyter_config_path()`` lists them); writes go to ``user_dir`` (normally the first)."""

    def __init__(self, user_dir: Path, config_path: Sequence[Path] = ()) -> None:
        self.user_dir = user_dir / "nbconfig"
        dirs = [p / "nbconfig" for p in config_path] or [self.user_dir]
        if self.user_dir not in dirs:
            dirs.insert(0, self.user_dir)
        self.read_dirs = tuple(reversed(dirs))  # lowest priority first

    @staticmethod
    def check_name(section: str) -> str:
        """The section name, or NotFound for one that is not ``\\w+``."""
        if not SECTION_NAME.fullmatch(section):
            raise NotFound(f"No config section {section!r}", reason="bad section")
        return section

    def _user_file(self, section: str) -> Path:
        return self.user_dir / f"{self.check_name(section)}.json"

    def _get(self, section: str) -> dict[str, Any]:
        self.check_name(section)
        merged: dict[str, Any] = {}
        for directory in self.read_dirs:
            drop_ins = directory / f"{section}.d"
            for path in sorted(drop_ins.glob("*.json")) if drop_ins.is_dir() else ():
                deep_merge(merged, _read_json(path))
            deep_merge(merged, _read_json(directory / f"{section}.json"))
        return merged

    def _write(self, section: str, data: dict[str, Any]) -> None:
        path = self._user_file(section)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(str(path), json.dumps(data, indent=2, sort_keys=True).encode(), None)
        except OSError as exc:
            raise NBServerError(f"Cannot write config section {section!r}: {exc.strerror}") from exc

    def _set(self, section: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise BadRequest("A config section is a JSON object", reason="bad config")
        self._write(section, data)

    def _update(self, section: str, patch: Any) -> dict[str, Any]:
        if not isinstance(patch, dict):
            raise BadRequest("A config update is a JSON object", reason="bad config")
        user = _read_json(self._user_file(section))
        self._write(section, deep_merge(user, patch))
        return self._get(section)

    async def get(self, section: str) -> dict[str, Any]:
        """The section as the frontend sees it (all directories merged); ``{}`` when unset.
        NotFound for a bad name; a 500 ``"bad config"`` for a file that is not a JSON object."""
        return await asyncio.to_thread(self._get, section)

    async def set(self, section: str, data: Any) -> None:
        """Replace the user's file of ``section`` with ``data`` (BadRequest unless an object)."""
        await asyncio.to_thread(self._set, section, data)

    async def update(self, section: str, patch: Any) -> dict[str, Any]:
        """Deep-merge ``patch`` into the user's file (``null`` deletes a key); the merged section."""
        return await asyncio.to_thread(self._update, section, patch)

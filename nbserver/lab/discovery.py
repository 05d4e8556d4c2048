"""Where the installed JupyterLab and Notebook 7 keep their files, found without importing them.

JupyterLab's wheel installs its application directory as data files under
``<prefix>/share/jupyter/lab`` (``static/`` with ``index.html`` and ``package.json``,
``schemas/``, ``themes/``, ``settings/``); prebuilt ("federated") extensions live under every
``share/jupyter/labextensions`` on Jupyter's data path, one directory per npm package with its
``package.json``. Notebook 7 keeps its bundle and page templates inside its Python package
directory (``notebook/static``, ``notebook/templates``), which is located with
``importlib.util.find_spec`` (that finds a top-level package without running it). Language packs
are Python packages announced by the ``jupyterlab.languagepack`` entry point; their message
catalogues are JSON files under ``<package>/locale/<locale>/LC_MESSAGES``.

Nothing here imports jupyterlab, jupyterlab_server, notebook or jupyter_server. :func:`discover`
reads the environment (Jupyter's path variables) once, when a server is built.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_dir, jupyter_config_path, jupyter_path

__all__ = [
    "Extension",
    "LabInstall",
    "discover",
    "federated_extensions",
    "language_pack_dirs",
]


@dataclass(frozen=True)
class Extension:
    """One prebuilt extension: its ``package.json`` metadata and where its files are."""

    name: str
    version: str
    path: Path  # the directory holding package.json and static/
    package: dict[str, Any]

    @property
    def build(self) -> dict[str, Any]:
        """``jupyterlab._build`` (where the remote entry is), ``{}`` when it was not built."""
        build = self.package.get("jupyterlab", {}).get("_build", {})
        return build if isinstance(build, dict) else {}

    def page_config_entry(self) -> dict[str, Any] | None:
        """The ``federated_extensions`` item of the page config, ``None`` if not loadable."""
        build = self.build
        if "load" not in build:
            return None
        entry: dict[str, Any] = {"name": self.name, "load": build["load"]}
        for key in ("extension", "mimeExtension", "style"):
            if key in build:
                entry[key] = build[key]
        entry["entrypoints"] = build.get("entrypoints")
        return entry


@dataclass(frozen=True)
class LabInstall:
    """The files one server hosts the UIs from (``None``/empty when not installed) and the
    user's directories it writes settings, workspaces and frontend config to."""

    lab_app_dir: Path | None  # share/jupyter/lab (static, schemas, themes, settings)
    lab_version: str
    notebook_dir: Path | None  # the notebook package directory (static, templates)
    notebook_version: str
    labextensions_path: tuple[Path, ...]
    user_settings_dir: Path
    workspaces_dir: Path
    config_dir: Path  # Jupyter's config dir: nbconfig/ (frontend config), labconfig/
    config_path: tuple[Path, ...] = field(default=())  # every config dir, most specific first

    @property
    def lab_available(self) -> bool:
        return self.lab_app_dir is not None and (self.lab_app_dir / "static" / "index.html").is_file()

    @property
    def notebook_available(self) -> bool:
        return self.notebook_dir is not None and (self.notebook_dir / "templates" / "tree.html").is_file()

    @property
    def schemas_dir(self) -> Path | None:
        return None if self.lab_app_dir is None else self.lab_app_dir / "schemas"

    @property
    def app_settings_dir(self) -> Path | None:
        return None if self.lab_app_dir is None else self.lab_app_dir / "settings"

    @property
    def themes_dir(self) -> Path | None:
        return None if self.lab_app_dir is None else self.lab_app_dir / "themes"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _lab_app_dir(data_path: Iterable[Path]) -> Path | None:
    """JupyterLab's application directory: ``$JUPYTERLAB_DIR``, else ``share/jupyter/lab`` of
    this interpreter's prefix, else the first on the data path holding a built ``index.html``."""
    explicit = os.environ.get("JUPYTERLAB_DIR")
    candidates = [Path(explicit)] if explicit else []
    candidates.append(Path(sys.prefix) / "share" / "jupyter" / "lab")
    candidates.extend(Path(p) / "lab" for p in data_path)
    for candidate in candidates:
        if (candidate / "static" / "index.html").is_file():
            return candidate
    return None


def _notebook_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("notebook")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def discover() -> LabInstall:
    """Find the installed UIs and the user's Jupyter directories (read from the environment:
    ``JUPYTER_CONFIG_DIR``, ``JUPYTER_PATH``, ``JUPYTERLAB_DIR``, ``JUPYTERLAB_SETTINGS_DIR``,
    ``JUPYTERLAB_WORKSPACES_DIR``, as JupyterLab reads them)."""
    data_path = [Path(p) for p in jupyter_path()]
    config_dir = Path(jupyter_config_dir())
    settings = os.environ.get("JUPYTERLAB_SETTINGS_DIR")
    workspaces = os.environ.get("JUPYTERLAB_WORKSPACES_DIR")
    return LabInstall(
        lab_app_dir=_lab_app_dir(data_path),
        lab_version=_version("jupyterlab"),
        notebook_dir=_notebook_dir(),
        notebook_version=_version("notebook"),
        labextensions_path=tuple(p / "labextensions" for p in data_path),
        user_settings_dir=Path(settings) if settings else config_dir / "lab" / "user-settings",
        workspaces_dir=Path(workspaces) if workspaces else config_dir / "lab" / "workspaces",
        config_dir=config_dir,
        config_path=tuple(Path(p) for p in jupyter_config_path()),
    )


def federated_extensions(labextensions_path: Sequence[Path]) -> dict[str, Extension]:
    """Every prebuilt extension on the path, by package name; the first directory listing a
    name wins (the path runs from the user's to the system's). Extensions are top-level
    directories or two deep under ``@scope``; unreadable ``package.json`` files are skipped."""
    found: dict[str, Extension] = {}
    for root in labextensions_path:
        if not root.is_dir():
            continue
        candidates = sorted([*root.glob("[!@]*/package.json"), *root.glob("@*/*/package.json")])
        for package_json in candidates:
            try:
                package = json.loads(package_json.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(package, dict) or not isinstance(package.get("name"), str):
                continue
            name = package["name"]
            if name not in found:
                found[name] = Extension(name, str(package.get("version", "")), package_json.parent, package)
    return found


def language_pack_dirs() -> dict[str, Path]:
    """Installed language packs: locale (``zh_CN``) -> its ``LC_MESSAGES`` directory. Found
    through the ``jupyterlab.languagepack`` entry point and the package's location on disk."""
    packs: dict[str, Path] = {}
    for entry in importlib.metadata.entry_points(group="jupyterlab.languagepack"):
        try:
            spec = importlib.util.find_spec(entry.value)
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.submodule_search_locations:
            continue
        package_dir = Path(next(iter(spec.submodule_search_locations)))
        messages = package_dir / "locale" / entry.name / "LC_MESSAGES"
        if messages.is_dir():
            packs[entry.name] = messages
    return packs

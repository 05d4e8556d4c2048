"""The ``page_config`` JupyterLab and Notebook 7 read from ``<script id="jupyter-config-data">``,
and the rendering of their ``index.html`` / ``tree.html``... templates.

The frontends take every URL they call from this object (``PageConfig.getOption``), so it is
the contract between the bundle and nbserver: the settings, workspaces, translations, themes,
listings and licenses APIs under ``/lab/api``, prebuilt extensions under ``/lab/extensions``,
the bundle under ``fullStaticUrl``. Keys follow jupyterlab_server 2.28 and notebook 7.6; the
differences are deliberate: ``buildAvailable`` is false (nbserver builds nothing), ``token`` is
empty (the page is opened after the ``?token=`` was traded for the login cookie, so the
frontend authenticates with the cookie and ``X-XSRFToken``; the token never sits in the page),
``terminalsAvailable`` follows the server (false until nbserver has terminals), and the
announcements plugin is off (``news.disabled``: it would fetch from the internet), and so are
the prebuilt extensions in :data:`NEED_SERVER_EXTENSIONS`, whose server half is a jupyter_server
extension nbserver cannot load (they would show an error dialog on every page; an administrator
who serves that API some other way turns one back on with ``{"name": false}`` in
``labconfig/page_config.json``'s ``disabledExtensions``).

Everything here is pure: the installed files were found by :mod:`.discovery`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import HubConfig
from ..services.config.manager import deep_merge
from .discovery import Extension

__all__ = [
    "JUPYTER_SERVER_VERSION",
    "LabUrls",
    "ServerFacts",
    "Templates",
    "lab_page_config",
    "notebook_page_config",
    "static_page_config",
]

#: the jupyter_server release whose API nbserver speaks, as ``notebookVersion`` (the frontends
#: parse it as a JSON list and compare it to feature thresholds)
JUPYTER_SERVER_VERSION = (2, 21, 1)


@dataclass(frozen=True)
class LabUrls:
    """The URLs (relative to ``base_url``, no trailing slash) of the JupyterLab application."""

    app: str = "/lab"
    labextensions: str = "/lab/extensions"
    settings: str = "/lab/api/settings"
    workspaces_api: str = "/lab/api/workspaces"
    listings: str = "/lab/api/listings"
    themes: str = "/lab/api/themes"
    licenses: str = "/lab/api/licenses"
    translations_api: str = "/lab/api/translations"
    tree: str = "/lab/tree"

    def entries(self, base_url: str) -> dict[str, str]:
        """``settingsUrl`` and ``fullSettingsUrl`` (with ``base_url``) for each URL, and so on."""
        names = {
            "app": "appUrl",
            "labextensions": "labextensionsUrl",
            "settings": "settingsUrl",
            "workspaces_api": "workspacesApiUrl",
            "listings": "listingsUrl",
            "themes": "themesUrl",
            "licenses": "licensesUrl",
            "translations_api": "translationsApiUrl",
            "tree": "treeUrl",
        }
        out: dict[str, str] = {}
        for attr, key in names.items():
            url: str = getattr(self, attr)
            out[key] = url
            out["full" + key[0].upper() + key[1:]] = base_url.rstrip("/") + url
        return out


def static_page_config(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``page_config.json`` documents of ``labconfig/`` (lowest priority first) merged;
    ``disabledExtensions`` / ``deferredExtensions`` may be lists or ``{name: bool}`` objects."""
    merged: dict[str, Any] = {}
    for document in documents:
        data = dict(document)
        for key in ("disabledExtensions", "deferredExtensions"):
            if isinstance(data.get(key), list):
                data[key] = {name: True for name in data[key] if isinstance(name, str)}
        deep_merge(merged, data)
    return merged


def _extension_entries(
    extensions: Mapping[str, Extension], disabled: dict[str, bool]
) -> list[dict[str, Any]]:
    """``federated_extensions``; also adds to ``disabled`` what extensions ask to disable
    (``jupyterlab.disabledExtensions`` of their package.json) unless they are disabled themselves."""
    entries = []
    for name in sorted(extensions):
        extension = extensions[name]
        entry = extension.page_config_entry()
        if entry is None:
            continue
        entries.append(entry)
        if disabled.get(name) is True:
            continue
        for other in extension.package.get("jupyterlab", {}).get("disabledExtensions", []) or []:
            if isinstance(other, str):
                disabled.setdefault(other, True)
    return entries


@dataclass(frozen=True)
class ServerFacts:
    """What both UIs' page configs say about this server (the inputs of the keys they share):
    its ``base_url`` and root, the prebuilt extensions, the merged ``labconfig/page_config.json``
    (:func:`static_page_config`), whether terminals are served, the Hub (``--hub``), the
    contents settings the file browsers follow, and the JupyterLab URLs."""

    base_url: str
    root_dir: Path
    extensions: Mapping[str, Extension]
    static_config: Mapping[str, Any] = field(default_factory=dict)
    terminals_available: bool = False
    hub: HubConfig | None = None
    allow_hidden: bool = False
    delete_to_trash: bool = True
    urls: LabUrls = LabUrls()


#: prebuilt extensions that only work with their jupyter_server extension: off unless re-enabled
NEED_SERVER_EXTENSIONS = {
    "ipyparallel-labextension": "lists clusters from /ipyparallel/clusters (nbserver serves /api/clusters)",
}


def _common(server: ServerFacts) -> dict[str, Any]:
    """The keys both UIs share; the ``static_config`` is copied, never changed."""
    base_url = server.base_url
    config: dict[str, Any] = json.loads(json.dumps(dict(server.static_config)))  # a private copy
    disabled = config.pop("disabledExtensions", {}) or {}
    for name in NEED_SERVER_EXTENSIONS:
        disabled.setdefault(name, True)
    deferred = config.pop("deferredExtensions", {}) or {}
    server_root = str(server.root_dir).replace("\\", "/")
    config.update(
        {
            "baseUrl": base_url,
            "wsUrl": "",
            "token": "",
            "buildAvailable": False,
            "buildCheck": False,
            "devMode": False,
            "cacheFiles": True,
            "exposeAppInBrowser": False,
            "extraLabextensionsPath": [],
            "ignorePlugins": [],
            "notebookStartsKernel": True,
            "copyAbsolutePath": False,
            "notebookVersion": json.dumps(list(JUPYTER_SERVER_VERSION)),
            "preferredPath": "/",
            "quitButton": True,
            "serverRoot": server_root,
            "rootUri": Path(server_root).as_uri() if Path(server_root).is_absolute() else "",
            "terminalsAvailable": server.terminals_available,
            "allow_hidden_files": server.allow_hidden,
            "delete_to_trash": server.delete_to_trash,
            "mathjaxConfig": "TeX-AMS_HTML-full,Safe",
            "fullMathjaxUrl": "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/MathJax.js",
            "news": {"disabled": True},
            "nbclassic_enabled": False,
            "store_id": 0,
            **server.urls.entries(base_url),
        }
    )
    config["federated_extensions"] = _extension_entries(server.extensions, disabled)
    config["disabledExtensions"] = [name for name, off in disabled.items() if off is True]
    config["deferredExtensions"] = [name for name, on in deferred.items() if on is True]
    hub = server.hub
    if hub is not None:
        config.update(
            {
                "hubPrefix": hub.hub_prefix,
                "hubHost": hub.hub_host,
                "hubUser": hub.user,
                "hubServerName": hub.server_name,
                "shareUrl": hub.hub_prefix.rstrip("/") + "/user-redirect",
            }
        )
    return config


def lab_page_config(
    server: ServerFacts,
    *,
    app_version: str,
    mode: str = "multiple-document",
    workspace: str = "default",
    tree_path: str = "",
) -> dict[str, Any]:
    """JupyterLab's page config for one page (``/lab``, ``/lab/workspaces/<ws>/tree/<path>``,
    ``/doc/tree/<path>``: ``mode`` is ``"single-document"`` for ``/doc``)."""
    config = _common(server)
    config.update(
        {
            "appName": "JupyterLab",
            "appNamespace": "lab",
            "appVersion": app_version,
            "fullStaticUrl": server.base_url.rstrip("/") + "/static/lab",
            "mode": mode,
            "workspace": workspace,
            "treePath": tree_path,
        }
    )
    return config


def notebook_page_config(
    server: ServerFacts,
    *,
    app_version: str,
    notebook_page: str,
    tree_path: str = "",
    config_dir: str = "",
) -> dict[str, Any]:
    """Notebook 7's page config; ``notebook_page`` is ``tree``, ``notebooks``, ``edit``,
    ``consoles`` or ``terminals`` (its templates set ``notebookPage`` themselves too)."""
    config = _common(server)
    base_url = server.base_url
    config.update(
        {
            "appName": "Jupyter Notebook",
            "appNamespace": "notebook",
            "appVersion": app_version,
            "fullStaticUrl": base_url.rstrip("/") + "/static/notebook",
            "frontendUrl": base_url.rstrip("/") + "/",
            "jupyterConfigDir": config_dir,
            "mode": "multiple-document",
            "workspace": "default",
            "notebookPage": notebook_page,
            "treePath": tree_path,
        }
    )
    return config


class Templates:
    """One UI's own Jinja templates (``index.html``, ``tree.html``...), rendered as their server
    does: with ``page_config``, ``base_url``, ``ws_url`` (empty: same origin) and ``custom_css``
    (true: nbserver serves ``/custom/custom.css``). Raises ``LookupError`` when jinja2 (a
    dependency of the ``[lab]`` extra) is missing."""

    def __init__(self, template_dir: Path) -> None:
        try:
            import jinja2
        except ImportError as exc:  # pragma: no cover - the [lab] extra installs it
            raise LookupError(
                "jinja2 is needed to render JupyterLab's pages: pip install nbserver[lab]"
            ) from exc
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir)), autoescape=True)

    def render(self, name: str, page_config: Mapping[str, Any], base_url: str) -> str:
        template = self.env.get_template(name)
        return template.render(page_config=dict(page_config), base_url=base_url, ws_url="", custom_css=True)

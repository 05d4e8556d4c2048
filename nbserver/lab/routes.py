"""The URL table of the hosted UIs (:mod:`nbserver.lab`).

The same URL templates are mounted whether or not the UIs are installed (so that the routes and
``api.yaml`` always match): without JupyterLab its pages are 404 ``"not installed"`` and its APIs
answer from empty directories. Notebook 7's ``/tree``, ``/notebooks``, ``/edit`` and
``/terminals`` pages are mounted here only when Notebook 7 is installed (:func:`notebook_installed`):
then they take those URLs from the built-in UI, which moves under ``/nbserver/``
(:mod:`nbserver.ui.handlers`); without it the built-in UI serves them. ``/consoles`` is always
Notebook 7's (404 ``"not installed"`` without it). Put a :class:`LabInstall` without
``notebook_dir`` in ``ctx.services["lab"]`` to keep the built-in UI at ``/tree`` anyway.
"""

from __future__ import annotations

from pathlib import Path

from ..context import ServerContext
from ..routing import Route
from ..services.contents.manager import ContentsManager
from ..services.terminals.service import unavailable_reason
from .discovery import LabInstall, discover, language_pack_dirs
from .licenses import BuildHandler, Licenses, LicensesHandler, ListingsHandler
from .pages import LAB_PAGE, FaviconHandler, LabHost, LabPage, NotebookPage, StaticFilesHandler
from .settings import SettingsHandler, SettingsStore, load_overrides
from .translations import Translations, TranslationsHandler
from .workspaces import WorkspacesHandler, WorkspacesStore

__all__ = ["lab_install", "notebook_installed", "routes"]

FAVICON = Path(__file__).resolve().parent.parent / "static" / "img" / "favicon.svg"


def lab_install(ctx: ServerContext) -> LabInstall:
    """The server's :class:`LabInstall`, ``ctx.services["lab"]`` (discovered when missing)."""
    install: LabInstall | None = ctx.services.get("lab")
    if install is None:
        install = ctx.services["lab"] = discover()
    return install


def notebook_installed(ctx: ServerContext) -> bool:
    """Whether Notebook 7 is installed (then it serves ``/tree``, ``/notebooks``, ``/edit``,
    ``/terminals``)."""
    return lab_install(ctx).notebook_available


def routes(ctx: ServerContext, contents: ContentsManager) -> list[Route]:
    """JupyterLab's pages and APIs, the UIs' static files, and Notebook 7's pages."""
    install = lab_install(ctx)
    host = LabHost.load(install)
    settings = SettingsStore(
        install.schemas_dir,
        install.user_settings_dir,
        install.labextensions_path,
        load_overrides(install.app_settings_dir),
    )
    translations = Translations(language_pack_dirs(), settings)
    # the terminal service mounts its real routes exactly when there is no reason against it
    page = {"ctx": ctx, "host": host, "contents": contents, "terminals": unavailable_reason(ctx) is None}
    kw = {"ctx": ctx}
    settings_kw = {**kw, "store": settings, "translator": translations.schema_translator}
    any_path = {"path": r".+"}
    lab_static = [install.lab_app_dir / "static"] if install.lab_app_dir else []
    themes = [install.themes_dir] if install.themes_dir else []
    table = [
        Route("/lab", LabPage, {**page, "mode": "multiple-document"}),
        Route("/lab/{page}", LabPage, {**page, "mode": "multiple-document"}, params={"page": LAB_PAGE}),
        Route("/doc", LabPage, {**page, "mode": "single-document"}),
        Route("/doc/{page}", LabPage, {**page, "mode": "single-document"}, params={"page": LAB_PAGE}),
        Route("/lab/api/settings", SettingsHandler, settings_kw),
        Route("/lab/api/settings/{plugin}", SettingsHandler, settings_kw, params={"plugin": r".+"}),
        Route(
            "/lab/api/workspaces", WorkspacesHandler, {**kw, "store": WorkspacesStore(install.workspaces_dir)}
        ),
        Route(
            "/lab/api/workspaces/{name}",
            WorkspacesHandler,
            {**kw, "store": WorkspacesStore(install.workspaces_dir)},
            params={"name": r".+"},
        ),
        Route("/lab/api/translations", TranslationsHandler, {**kw, "translations": translations}),
        Route("/lab/api/translations/{locale}", TranslationsHandler, {**kw, "translations": translations}),
        Route(
            "/lab/api/licenses",
            LicensesHandler,
            {**kw, "licenses": Licenses(lab_static[0] if lab_static else None, host.extensions)},
        ),
        Route("/lab/api/listings/{path}", ListingsHandler, kw, params=any_path),
        Route("/lab/api/build", BuildHandler, kw),
        Route(
            "/lab/api/themes/{path}",
            StaticFilesHandler,
            {**kw, "roots": [*themes, *install.labextensions_path]},
            params=any_path,
        ),
        Route(
            "/lab/extensions/{path}",
            StaticFilesHandler,
            {**kw, "roots": list(install.labextensions_path)},
            params=any_path,
        ),
        Route("/static/lab/{path}", StaticFilesHandler, {**kw, "roots": lab_static}, params=any_path),
        Route(
            "/static/notebook/{path}",
            StaticFilesHandler,
            {**kw, "roots": [install.notebook_dir / "static"] if install.notebook_dir else []},
            params=any_path,
        ),
        Route("/static/favicons/{name}", FaviconHandler, {**kw, "icon": FAVICON}),
        Route("/consoles/{path}", NotebookPage, {**page, "page": "consoles"}, params=any_path),
    ]
    if install.notebook_available:
        table += [
            Route("/tree", NotebookPage, {**page, "page": "tree"}),
            Route("/tree/{path}", NotebookPage, {**page, "page": "tree"}, params=any_path),
            Route("/notebooks/{path}", NotebookPage, {**page, "page": "notebooks"}, params=any_path),
            Route("/edit/{path}", NotebookPage, {**page, "page": "edit"}, params=any_path),
            # a terminal's name as the terminal API has it: /terminals/websocket/<x> is not a page
            Route("/terminals/{name}", NotebookPage, {**page, "page": "terminals"}, params={"name": r"\w+"}),
        ]
    return table

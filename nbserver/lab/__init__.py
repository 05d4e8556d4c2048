"""Hosting the installed JupyterLab and Notebook 7 (the ``[lab]`` extra).

nbserver serves both UIs from the files their wheels install (bundles, templates, schemas,
``package.json`` files, language packs), found by :mod:`.discovery`; it imports neither
jupyter_server, jupyterlab_server, jupyterlab nor notebook. :func:`routes` is the URL table.
"""

from .routes import notebook_installed, routes

__all__ = ["notebook_installed", "routes"]

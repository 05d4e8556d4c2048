"""Fixtures for the hosted UIs: each test's Jupyter config, settings and workspaces directories
are its own (the environment variables JupyterLab reads, set before the server is built)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from nbserver.lab.discovery import discover

LAB = discover()
requires_lab = pytest.mark.skipif(
    not LAB.lab_available,
    reason="JupyterLab is not installed: pip install -e '.[lab]' (or 'jupyterlab>=4.4')",
)
requires_notebook = pytest.mark.skipif(
    not LAB.notebook_available,
    reason="Notebook 7 is not installed: pip install -e '.[lab]' (or 'notebook>=7.4')",
)
requires_zh_cn = pytest.mark.skipif(
    importlib.util.find_spec("jupyterlab_language_pack_zh_CN") is None,
    reason="the zh-CN language pack is not installed: pip install jupyterlab-language-pack-zh-CN",
)


@pytest.fixture
def jupyter_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Jupyter config directory (``lab/user-settings``, ``lab/workspaces``, ``nbconfig``)."""
    config = tmp_path / "jupyter-config"
    config.mkdir()
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    monkeypatch.delenv("JUPYTERLAB_SETTINGS_DIR", raising=False)
    monkeypatch.delenv("JUPYTERLAB_WORKSPACES_DIR", raising=False)
    return config


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last (as in tests/ui: Playwright's sync API keeps an event loop
    running in this thread while the session-wide browser lives)."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))

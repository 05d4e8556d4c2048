"""Pure parts of the hosted UIs: the page config, JSON merging, JSON5 settings, workspace slugs."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbserver.config import HubConfig
from nbserver.errors import BadRequest
from nbserver.lab.discovery import Extension
from nbserver.lab.page_config import lab_page_config, notebook_page_config, static_page_config
from nbserver.lab.settings import parse_json5
from nbserver.lab.workspaces import slugify
from nbserver.services.config.manager import deep_merge


def _extension(name: str, **jupyterlab: object) -> Extension:
    return Extension(name, "1.0.0", Path("/x") / name, {"name": name, "jupyterlab": jupyterlab})


def test_deep_merge_nests_replaces_and_null_deletes() -> None:
    target = {"a": {"b": 1, "c": 2}, "d": [1], "e": 5}
    assert deep_merge(target, {"a": {"c": None, "x": 3}, "d": [2], "e": None, "n": {"k": None}}) == {
        "a": {"b": 1, "x": 3},
        "d": [2],
        "n": {},
    }


def test_lab_page_config_urls_and_server_facts() -> None:
    config = lab_page_config(
        base_url="/base/",
        root_dir=Path("/srv/root"),
        app_version="4.6.6",
        extensions={
            "ext": _extension("ext", _build={"load": "static/remoteEntry.1.js", "extension": "./extension"})
        },
        tree_path="a/b.ipynb",
        workspace="ws",
    )
    assert config["baseUrl"] == "/base/"
    assert config["fullStaticUrl"] == "/base/static/lab"
    assert config["appUrl"] == "/lab" and config["fullAppUrl"] == "/base/lab"
    assert config["fullSettingsUrl"] == "/base/lab/api/settings"
    assert config["fullWorkspacesApiUrl"] == "/base/lab/api/workspaces"
    assert config["fullTranslationsApiUrl"] == "/base/lab/api/translations"
    assert config["fullLabextensionsUrl"] == "/base/lab/extensions"
    assert config["fullThemesUrl"] == "/base/lab/api/themes"
    assert config["treePath"] == "a/b.ipynb" and config["workspace"] == "ws"
    assert config["buildAvailable"] is False and config["terminalsAvailable"] is False
    assert config["token"] == ""  # the page never carries the token
    assert config["serverRoot"] == "/srv/root"
    assert config["appVersion"] == "4.6.6" and config["notebookVersion"] == "[2, 21, 1]"
    assert config["federated_extensions"] == [
        {"name": "ext", "load": "static/remoteEntry.1.js", "extension": "./extension", "entrypoints": None}
    ]
    assert "hubPrefix" not in config


def test_unbuilt_extensions_are_left_out_and_may_disable_others() -> None:
    extensions = {
        "unbuilt": _extension("unbuilt"),
        "disabler": _extension("disabler", _build={"load": "x.js"}, disabledExtensions=["victim"]),
    }
    config = lab_page_config(base_url="/", root_dir=Path("/r"), app_version="4", extensions=extensions)
    assert [e["name"] for e in config["federated_extensions"]] == ["disabler"]
    assert config["disabledExtensions"] == ["victim"]


def test_static_page_config_lists_and_objects_merge() -> None:
    merged = static_page_config([{"disabledExtensions": ["a", "b"]}, {"disabledExtensions": {"b": False}}])
    config = lab_page_config(
        base_url="/", root_dir=Path("/r"), app_version="4", extensions={}, static_config=merged
    )
    assert config["disabledExtensions"] == ["a"]


def test_hub_keys_for_file_hub_control_panel_and_logout() -> None:
    hub = HubConfig(
        api_url="http://hub/hub/api",
        api_token="x",
        client_id="jupyterhub-user-ann",
        user="ann",
        server_name="",
        hub_host="",
        hub_prefix="/hub/",
    )
    config = notebook_page_config(
        base_url="/user/ann/",
        root_dir=Path("/r"),
        app_version="7.6.5",
        extensions={},
        notebook_page="tree",
        hub=hub,
    )
    assert config["hubPrefix"] == "/hub/" and config["hubUser"] == "ann" and config["hubHost"] == ""
    assert config["shareUrl"] == "/hub/user-redirect"
    assert config["appName"] == "Jupyter Notebook" and config["notebookPage"] == "tree"
    assert config["fullStaticUrl"] == "/user/ann/static/notebook" and config["frontendUrl"] == "/user/ann/"


def test_json5_accepts_comments_and_trailing_commas() -> None:
    assert parse_json5('{\n // a comment\n theme: "dark", list: [1, 2,],\n}') == {
        "theme": "dark",
        "list": [1, 2],
    }


@pytest.mark.parametrize("raw", ["{", "{a: }", "nope nope"])
def test_json5_rejects_garbage(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_json5(raw)


def test_workspace_slugs_match_jupyterlab_server() -> None:
    # values computed with jupyterlab_server.workspaces_handler.slugify
    assert slugify("default") == "default-37a8"
    assert slugify("My Space") == "my-space-42e6"

"""Pure parts of the hosted UIs: the page config, JSON merging, JSON5 settings, workspace slugs."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from nbserver.config import HubConfig
from nbserver.errors import BadRequest
from nbserver.lab.discovery import Extension
from nbserver.lab.page_config import ServerFacts, lab_page_config, notebook_page_config, static_page_config
from nbserver.lab.settings import parse_json5
from nbserver.lab.translations import LOCALE_SETTINGS, Translations, translate_schema
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
        ServerFacts(
            base_url="/base/",
            root_dir=Path("/srv/root"),
            extensions={
                "ext": _extension(
                    "ext", _build={"load": "static/remoteEntry.1.js", "extension": "./extension"}
                )
            },
        ),
        app_version="4.6.6",
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
    config = lab_page_config(ServerFacts("/", Path("/r"), extensions), app_version="4")
    assert [e["name"] for e in config["federated_extensions"]] == ["disabler"]
    assert config["disabledExtensions"] == ["ipyparallel-labextension", "victim"]


def test_static_page_config_lists_and_objects_merge() -> None:
    merged = static_page_config([{"disabledExtensions": ["a", "b"]}, {"disabledExtensions": {"b": False}}])
    config = lab_page_config(ServerFacts("/", Path("/r"), {}, static_config=merged), app_version="4")
    assert config["disabledExtensions"] == ["a", "ipyparallel-labextension"]


def test_extensions_needing_a_server_extension_are_off_unless_turned_back_on() -> None:
    """ipyparallel's lab extension lists clusters from its jupyter_server extension's
    /ipyparallel/ API, which nbserver does not load: on by default it shows an error dialog on
    every page. An administrator's ``{"ipyparallel-labextension": false}`` turns it back on."""
    config = lab_page_config(ServerFacts("/", Path("/r"), {}), app_version="4")
    assert "ipyparallel-labextension" in config["disabledExtensions"]
    back_on = static_page_config([{"disabledExtensions": {"ipyparallel-labextension": False}}])
    config = lab_page_config(ServerFacts("/", Path("/r"), {}, static_config=back_on), app_version="4")
    assert "ipyparallel-labextension" not in config["disabledExtensions"]


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
        ServerFacts("/user/ann/", Path("/r"), {}, hub=hub), app_version="7.6.5", notebook_page="tree"
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


CATALOGUE = {
    "": {"domain": "jupyterlab", "language": "zh-CN"},
    "schema\x04Language": ["语言"],
    "schema\x04Language settings.": ["语言设置。"],
    "settings\x04Language locale": ["语言区域设置"],
    "settings\x04Language": ["图标语言"],
    "menu\x04Language": ["菜单语言"],
    "toolbar\x04Run": ["运行"],
    "settings\x04Untranslated": [""],
    "schema\x04Own": ["自有"],
}
SCHEMA = {
    "title": "Language",
    "description": "Language settings.",
    "jupyter.lab.setting-icon-label": "Language",
    "jupyter.lab.menus": {"main": [{"id": "m", "items": [{"submenu": {"id": "s", "label": "Language"}}]}]},
    "jupyter.lab.toolbars": {"Notebook": [{"name": "run", "label": "Run"}]},
    "properties": {
        "locale": {
            "type": "string",
            "title": "Language locale",
            "description": "Untranslated",
            "default": "Language",
        },
        "mode": {"enum": ["Language", "Run"], "title": "Language"},
    },
    "definitions": {"d": {"properties": {"p": {"title": "Language locale"}}}},
}


def test_translate_schema_selected_strings_with_their_contexts() -> None:
    """Each selector gets its own context ("Language" is three different translations); not
    selected: ``default`` values, enum strings in lists, strings with no or an empty translation."""
    original = copy.deepcopy(SCHEMA)
    out = translate_schema(SCHEMA, CATALOGUE)
    assert original == SCHEMA  # the argument is not changed
    assert (out["title"], out["description"]) == ("语言", "语言设置。")
    assert out["jupyter.lab.setting-icon-label"] == "图标语言"
    assert out["jupyter.lab.menus"]["main"][0]["items"][0]["submenu"]["label"] == "菜单语言"
    assert out["jupyter.lab.toolbars"]["Notebook"][0]["label"] == "运行"
    locale = out["properties"]["locale"]
    assert locale == {
        "type": "string",
        "title": "语言区域设置",
        "description": "Untranslated",
        "default": "Language",
    }
    assert out["properties"]["mode"] == {"enum": ["Language", "Run"], "title": "图标语言"}
    assert out["definitions"]["d"]["properties"]["p"]["title"] == "语言区域设置"


def test_translate_schema_own_selectors_use_the_schema_context() -> None:
    schema = {
        "jupyter.lab.internationalization": {"selectors": ["properties/.*/enumLabel"]},
        "properties": {"x": {"enumLabel": "Own", "other": "Own"}},
    }
    out = translate_schema(schema, CATALOGUE)
    assert out["properties"]["x"] == {"enumLabel": "自有", "other": "Own"}


class _Settings:
    def __init__(self, locale: str) -> None:
        self.locale = locale

    async def setting(self, plugin: str, key: str, default: Any = None) -> Any:
        assert (plugin, key) == (LOCALE_SETTINGS, "locale")
        return self.locale


def test_schema_translator_follows_the_locale_and_the_schema_domain(tmp_path: Path) -> None:
    """English (and ``default``, and an uninstalled locale): unchanged copies. zh_CN: each
    schema through its own domain's catalogue (``jupyterlab`` unless the schema names one; a
    domain the pack lacks leaves the schema as it is)."""
    (tmp_path / "jupyterlab.json").write_text(json.dumps(CATALOGUE), encoding="utf-8")
    other = {"": {"domain": "mine"}, "schema\x04Language": ["我的语言"]}
    (tmp_path / "mine.json").write_text(json.dumps(other), encoding="utf-8")
    mine = {"title": "Language", "jupyter.lab.internationalization": {"domain": "mine"}}
    missing = {"title": "Language", "jupyter.lab.internationalization": {"domain": "nosuch"}}

    async def translated(locale: str, schema: dict[str, Any]) -> dict[str, Any]:
        translate = await Translations({"zh_CN": tmp_path}, _Settings(locale)).schema_translator()  # type: ignore[arg-type]
        return translate(schema)

    for locale in ("en", "default", "fr_FR"):
        out = asyncio.run(translated(locale, SCHEMA))
        assert out == SCHEMA and out is not SCHEMA
    assert asyncio.run(translated("zh_CN", SCHEMA))["title"] == "语言"
    assert asyncio.run(translated("zh_CN", mine))["title"] == "我的语言"
    assert asyncio.run(translated("zh_CN", missing)) == missing

"""JupyterLab's server APIs over real HTTP: settings, workspaces, translations, licenses,
listings, build, and the pages and static files, against the installed wheels."""

from __future__ import annotations

import json
import re

from tests.lab.conftest import LAB, requires_lab, requires_zh_cn

THEMES = "@jupyterlab/apputils-extension:themes"
LOCALE = "@jupyterlab/translation-extension:plugin"


def page_config(html: str) -> dict:
    match = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, html[:500]
    return json.loads(match.group(1))


@requires_lab
async def test_lab_page_renders_index_with_page_config(jupyter_dirs, make_server, make_client) -> None:
    server = await make_server(base_url="/base/")
    client = make_client(server)
    response = await client.get("lab/workspaces/ws1/tree/dir/a.ipynb")
    assert response.status == 200
    config = page_config(response.text)
    assert config["baseUrl"] == "/base/" and config["fullStaticUrl"] == "/base/static/lab"
    assert config["workspace"] == "ws1" and config["treePath"] == "dir/a.ipynb"
    assert config["mode"] == "multiple-document" and config["appVersion"] == LAB.lab_version
    assert config["token"] == "" and config["buildAvailable"] is False
    assert "@jupyter-widgets/jupyterlab-manager" in {e["name"] for e in config["federated_extensions"]}
    main = re.search(r'src="(/base/static/lab/main\.[0-9a-f]+\.js)\?v=', response.text)
    assert main, "the bundle's entry point is linked under fullStaticUrl"
    static = await client.get(main.group(1)[len("/base/") :], auth=None)
    assert (static.status == 200 and b"webpack" in static.body[:5000]) or static.body
    doc = page_config((await client.get("doc/tree/x.ipynb")).text)
    assert doc["mode"] == "single-document" and doc["treePath"] == "x.ipynb"


@requires_lab
async def test_lab_page_trades_the_token_for_the_cookie(jupyter_dirs, make_server, make_client) -> None:
    client = make_client(await make_server())
    response = await client.get("lab", auth="query", use_cookies=True)
    assert response.status == 302 and response.headers["Location"] == "/lab"
    assert "_xsrf" in client.cookies
    assert (await client.get("lab", auth=None, use_cookies=True)).status == 200
    assert (await client.get("lab", auth=None)).status == 302  # anonymous: to the login page


@requires_lab
async def test_prebuilt_extension_and_theme_files_are_served(jupyter_dirs, make_server, make_client) -> None:
    client = make_client(await make_server())
    config = page_config((await client.get("lab")).text)
    widgets = next(
        e for e in config["federated_extensions"] if e["name"] == "@jupyter-widgets/jupyterlab-manager"
    )
    remote = await client.get(f"lab/extensions/{widgets['name']}/{widgets['load']}", auth=None)
    assert remote.status == 200
    theme = await client.get("lab/api/themes/@jupyterlab/theme-light-extension/index.css", auth=None)
    assert theme.status == 200 and theme.headers["Content-Type"].startswith("text/css")
    assert (await client.get("lab/extensions/nope/static/x.js", auth=None)).status == 404
    assert (await client.get("static/lab/../../../../etc/passwd", auth=None)).status in (403, 404)
    icon = await client.get("static/favicons/favicon-busy-1.ico", auth=None)
    assert icon.status == 200


@requires_lab
async def test_settings_list_get_and_ids_only(jupyter_dirs, make_server, make_client) -> None:
    client = make_client(await make_server())
    ids = (await client.get("lab/api/settings", params={"ids_only": "true"})).json["settings"]
    assert {"id": THEMES} in ids and all(set(item) == {"id"} for item in ids)
    full = (await client.get("lab/api/settings")).json["settings"]
    assert [s["id"] for s in full] == [s["id"] for s in ids]
    one = (await client.get(f"lab/api/settings/{THEMES}")).json
    assert one["id"] == THEMES and one["raw"] == "{}" and one["settings"] == {}
    assert one["schema"]["properties"]["theme"]["default"] == "JupyterLab Light"
    assert one["version"] == LAB.lab_version


@requires_lab
async def test_settings_save_json5_validated(jupyter_dirs, make_server, make_client) -> None:
    """Bad inputs: not JSON5, a value against the schema, a body without raw, an unknown plugin."""
    client = make_client(await make_server())
    raw = '{\n  // dark, please\n  "theme": "JupyterLab Dark",\n}'
    assert (await client.request("PUT", f"lab/api/settings/{THEMES}", json={"raw": raw})).status == 204
    saved = (await client.get(f"lab/api/settings/{THEMES}")).json
    assert saved["raw"] == raw and saved["settings"] == {"theme": "JupyterLab Dark"}
    assert saved["last_modified"] is not None
    stored = (
        jupyter_dirs
        / "lab"
        / "user-settings"
        / "@jupyterlab"
        / "apputils-extension"
        / "themes.jupyterlab-settings"
    )
    assert stored.read_text() == raw
    bad = await client.request("PUT", f"lab/api/settings/{THEMES}", json={"raw": "{theme: "})
    assert bad.status == 400 and bad.json["reason"] == "bad settings"
    invalid = await client.request("PUT", f"lab/api/settings/{THEMES}", json={"raw": '{"theme": 42}'})
    assert invalid.status == 400 and invalid.json["reason"] == "invalid settings"
    assert (await client.request("PUT", f"lab/api/settings/{THEMES}", json={"nope": 1})).status == 400
    assert stored.read_text() == raw  # nothing written by the refused saves
    assert (await client.get("lab/api/settings/@nope/nope:plugin")).status == 404


@requires_lab
async def test_stored_settings_that_break_the_schema_are_ignored(
    jupyter_dirs, make_server, make_client
) -> None:
    stored = (
        jupyter_dirs
        / "lab"
        / "user-settings"
        / "@jupyterlab"
        / "apputils-extension"
        / "themes.jupyterlab-settings"
    )
    stored.parent.mkdir(parents=True)
    stored.write_text('{"theme": 42}')
    client = make_client(await make_server())
    one = (await client.get(f"lab/api/settings/{THEMES}")).json
    assert one["settings"] == {} and one["raw"] == "{}"


async def test_settings_overrides_change_schema_defaults(
    tmp_path, jupyter_dirs, monkeypatch, make_server, make_client
) -> None:
    """A minimal application directory (no JupyterLab needed): its overrides.json5 changes a default."""
    app = tmp_path / "lab-app"
    (app / "static").mkdir(parents=True)
    (app / "static" / "index.html").write_text("<script>{{ page_config | tojson }}</script>")
    schema_dir = app / "schemas" / "@demo" / "ext"
    schema_dir.mkdir(parents=True)
    (schema_dir / "plugin.json").write_text(
        json.dumps({"type": "object", "properties": {"size": {"type": "integer", "default": 1}}})
    )
    (app / "settings").mkdir()
    (app / "settings" / "overrides.json5").write_text("{'@demo/ext:plugin': {size: 7}, // admin\n}")
    monkeypatch.setenv("JUPYTERLAB_DIR", str(app))
    client = make_client(await make_server())
    model = (await client.get("lab/api/settings/@demo/ext:plugin")).json
    assert model["schema"]["properties"]["size"]["default"] == 7
    assert model["version"] == "N/A"
    assert (
        await client.request("PUT", "lab/api/settings/@demo/ext:plugin", json={"raw": "{size: 'x'}"})
    ).status == 400


async def test_workspaces_round_trip(jupyter_dirs, make_server, make_client) -> None:
    """Bad inputs: a mismatched metadata id, a body that is not a workspace, deleting a missing one."""
    client = make_client(await make_server())
    assert (await client.get("lab/api/workspaces")).json == {"workspaces": {"ids": [], "values": []}}
    empty = (await client.get("lab/api/workspaces/lab")).json
    assert empty == {"data": {}, "metadata": {"id": "/lab"}}
    workspace = {"data": {"layout-restorer:data": {"main": {}}}, "metadata": {"id": "/lab"}}
    assert (await client.request("PUT", "lab/api/workspaces/lab", json=workspace)).status == 204
    loaded = (await client.get("lab/api/workspaces/lab")).json
    assert loaded["data"] == workspace["data"] and loaded["metadata"]["id"] == "/lab"
    assert loaded["metadata"]["last_modified"]
    assert (jupyter_dirs / "lab" / "workspaces" / "lab-a6d8.jupyterlab-workspace").exists() or any(
        (jupyter_dirs / "lab" / "workspaces").glob("lab-*.jupyterlab-workspace")
    )
    listing = (await client.get("lab/api/workspaces")).json["workspaces"]
    assert listing["ids"] == ["/lab"]
    wrong = await client.request(
        "PUT", "lab/api/workspaces/lab", json={"data": {}, "metadata": {"id": "/other"}}
    )
    assert wrong.status == 400 and wrong.json["reason"] == "bad workspace"
    assert (await client.request("PUT", "lab/api/workspaces/lab", json=[1])).status == 400
    assert (await client.request("DELETE", "lab/api/workspaces/lab")).status == 204
    assert (await client.request("DELETE", "lab/api/workspaces/lab")).status == 404


async def test_translations_list_and_english(jupyter_dirs, make_server, make_client) -> None:
    client = make_client(await make_server())
    listing = (await client.get("lab/api/translations")).json
    assert listing["message"] == "" and listing["data"]["en"]["displayName"] == "English"
    english = (await client.get("lab/api/translations/en")).json
    assert english["data"] == {} and "not installed" in english["message"]
    invalid = (await client.get("lab/api/translations/no%20such")).json
    assert invalid["data"] == {} and "not valid" in invalid["message"]


@requires_lab
@requires_zh_cn
async def test_zh_cn_pack_catalogues_and_locale_setting(jupyter_dirs, make_server, make_client) -> None:
    client = make_client(await make_server())
    assert "zh_CN" in (await client.get("lab/api/translations")).json["data"]
    pack = (await client.get("lab/api/translations/zh_CN")).json
    assert pack["message"] == "" and pack["data"]["jupyterlab"][""]["language"] == "zh-CN"
    assert (
        await client.request("PUT", f"lab/api/settings/{LOCALE}", json={"raw": '{"locale": "zh_CN"}'})
    ).status == 204
    current = (await client.get("lab/api/translations/default")).json
    assert "jupyterlab" in current["data"]
    names = (await client.get("lab/api/translations")).json["data"]
    assert names["en"]["displayName"] != "English"  # named in Chinese now


@requires_lab
async def test_licenses_listings_build(jupyter_dirs, make_server, make_client) -> None:
    client = make_client(await make_server())
    licenses = (await client.get("lab/api/licenses", params={"bundles": "@jupyterlab/application-top"})).json
    assert list(licenses["bundles"]) == ["@jupyterlab/application-top"]
    assert licenses["bundles"]["@jupyterlab/application-top"]["packages"]
    csv = await client.get("lab/api/licenses", params={"format": "csv", "download": "1"})
    assert csv.status == 200 and csv.text.startswith("bundle,name,versionInfo")
    assert "attachment" in csv.headers["Content-Disposition"]
    assert (await client.get("lab/api/licenses", params={"format": "pdf"})).status == 400
    listings = await client.get("lab/api/listings/@jupyterlab/extensionmanager-extension/listings.json")
    assert listings.json["blocked_extensions"] == []
    assert (await client.get("lab/api/build")).json["status"] == "stable"
    assert (await client.post("lab/api/build")).status == 501

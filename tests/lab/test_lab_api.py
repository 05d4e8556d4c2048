"""JupyterLab's server APIs over real HTTP: settings, workspaces, translations, licenses,
listings, build, and the pages and static files, against the installed wheels."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from tests.lab.conftest import LAB, requires_lab, requires_notebook, requires_zh_cn

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
    """Bad inputs: a mismatched metadata id (stored under the URL's name), a body that is not a
    workspace, deleting a missing one."""
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
    other = await client.request(
        "PUT", "lab/api/workspaces/lab", json={"data": {}, "metadata": {"id": "/other"}}
    )
    assert other.status == 204  # the URL names the workspace (test_workspace_put_*)
    assert (await client.get("lab/api/workspaces")).json["workspaces"]["ids"] == ["/lab"]
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
    assert (await client.post("lab/api/build", validate=False)).status == 405  # see the 405 test below


# -- regressions found by the contract fuzzer (tests/test_contract_fuzz.py) ------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "lab/api/build"),  # was 501, which schemathesis counts as a server error
        ("DELETE", "lab/api/build"),  # was 501 (JupyterLab: 500 "No current build")
        ("PUT", "lab/api/settings"),  # no plugin id: was 500 'Unhandled error'
        ("DELETE", "lab/api/settings"),
        ("PUT", "lab/api/workspaces"),  # no name: was 500 'Unhandled error'
        ("DELETE", "lab/api/workspaces"),  # no name: was 500
        ("PATCH", "lab/api/workspaces"),
    ],
)
async def test_methods_a_lab_collection_or_build_lacks_are_405_with_allow(
    jupyter_dirs, make_server, make_client, method: str, path: str
) -> None:
    """JupyterLab never sends these (it reads buildAvailable: false; it always names the plugin
    or workspace). nbserver answered 501 or a 500; RFC 9110 and schemathesis want 405 + Allow."""
    client = make_client(await make_server())
    r = await client.request(method, path, json={"raw": "{}"} if method == "PUT" else None, validate=False)
    assert (r.status, r.headers.get("Allow")) == (405, "GET, OPTIONS")
    assert r.json["message"]
    assert (await client.request(method, path, auth=None, validate=False)).status == 403  # auth first
    assert (await client.get(path)).status == 200


async def test_workspace_put_stores_under_the_urls_name_whatever_the_body_id(
    jupyter_dirs, make_server, make_client
) -> None:
    """Bad inputs the fuzzer sent: ``metadata.id`` ``""``, one naming another workspace, one
    percent-encoded. A schema-valid body was a 400 "Workspace metadata ID mismatch" (as
    jupyterlab_server); the URL names the workspace and its stored id is ``/<name>``."""
    client = make_client(await make_server())
    for body_id in ("", "/other", "%2Fws", "ws"):
        body = {"data": {"k": body_id}, "metadata": {"id": body_id}}
        assert (await client.request("PUT", "lab/api/workspaces/ws", json=body)).status == 204
        stored = (await client.get("lab/api/workspaces/ws")).json
        assert stored["metadata"]["id"] == "/ws" and stored["data"] == {"k": body_id}
    listing = (await client.get("lab/api/workspaces")).json["workspaces"]
    assert listing["ids"] == ["/ws"]
    assert (await client.get("lab/api/workspaces/other")).json["data"] == {}  # never written
    for bad in (
        {"data": {}},
        {"data": {}, "metadata": {"id": 1}},
        {"data": [], "metadata": {"id": "/ws"}},
        {"metadata": {"id": ""}},  # no data: the fuzzer's, was 204 (then a GET without data)
    ):
        r = await client.request("PUT", "lab/api/workspaces/ws", json=bad)
        assert (r.status, r.json["reason"]) == (400, "bad workspace")  # not a workspace (api.yaml too)


def terminals_served() -> bool:
    from nbserver.services.terminals.manager import pty_available

    return importlib.util.find_spec("terminado") is not None and pty_available()


@requires_lab
@requires_notebook
@pytest.mark.parametrize("enabled", [True, False])
async def test_terminals_available_follows_the_terminal_routes(
    jupyter_dirs, make_server, make_client, enabled: bool
) -> None:
    """Both UIs' page configs say ``terminalsAvailable`` exactly when ``/api/terminals`` is
    served (it was always false: JupyterLab and Notebook 7 hid their terminals)."""
    if enabled and not terminals_served():
        pytest.skip("terminals need terminado and a pty here")
    client = make_client(await make_server(terminals_enabled=enabled))
    assert ((await client.get("api/terminals")).status == 200) is enabled
    for page in ("lab", "tree", "terminals/1"):
        assert page_config((await client.get(page)).text)["terminalsAvailable"] is enabled, page


@requires_notebook
@pytest.mark.parametrize("name", ["a-b", "a.b", "a%20b", "x/y", "%2E%2E"])
async def test_a_terminal_websocket_url_is_never_a_notebook7_page(
    make_server, make_client, name: str
) -> None:
    """Fuzz finding: ``/terminals/websocket/<name>`` with a name that is no terminal name (not
    ``\\w+``) reached Notebook 7's ``/terminals/{path}`` page: 200 HTML. It is the generic 404
    now, as api.yaml documents for the websocket route; a terminal name is still a page."""
    client = make_client(await make_server())
    r = await client.get(f"terminals/websocket/{name}")
    assert r.status == 404 and "jupyter-config-data" not in r.text
    assert (await client.get("terminals/1")).status == 200  # Notebook 7's terminal page


@pytest.mark.parametrize("name", ["favicon.ico", "favicon-busy-1.ico", "nope.png"])
async def test_trace_on_a_favicon_is_405_with_allow(make_server, make_client, name: str) -> None:
    """Fuzz finding: ``TRACE /static/favicons/<name>`` answered 405 without ``Allow``."""
    client = make_client(await make_server())
    r = await client.request("TRACE", f"static/favicons/{name}", auth=None, validate=False)
    assert (r.status, r.headers.get("Allow")) == (405, "GET, HEAD")

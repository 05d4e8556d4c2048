"""JupyterLab in Simplified Chinese, in headless Chromium, with the
``jupyterlab-language-pack-zh-CN`` pack installed: the user picks Settings ▸ Language ▸
中文 (简体, 中国), confirms the reload, and sees the menu bar in Chinese ("文件" for File);
picking English again (now listed as "英语") brings "File" back.

The chain that must hold on the server side: ``/lab/api/translations`` lists ``zh_CN`` with its
display names, the menu's choice is saved through ``/lab/api/settings``, and after the reload
``/lab/api/translations/zh_CN`` serves the catalogues the frontend translates with.

Every response the page receives is recorded; a 4xx/5xx not allowed by
:data:`tests.lab.browsing.ALLOWED` fails the test, and so does any unexpected error dialog.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.lab.browsing import Recorder, lab_page, lab_server, no_error_dialog
from tests.lab.conftest import requires_lab, requires_zh_cn
from tests.ui.conftest import TOKEN, UIServer, requires_chromium

__all__ = ["lab_page", "lab_server"]  # fixtures

pytestmark = [requires_lab, requires_zh_cn, requires_chromium]

LOCALE_SETTINGS = "@jupyterlab/translation-extension:plugin"
CHINESE = "中文 (简体, 中国)"  # how both the English and the Chinese UI name zh_CN (its native name)


@pytest.fixture(autouse=True)
def english_afterwards(lab_server: UIServer) -> Iterator[None]:
    """Each test starts in English: the language choice is a user setting, and the server
    (with its settings directory) is shared by the module's tests."""
    yield
    lab_server.api("PUT", f"lab/api/settings/{LOCALE_SETTINGS}", {"raw": "{}"})


def _menu_bar(page: Any) -> Any:
    return page.locator("#jp-MainMenu")


def _pick_language(page: Any, settings_menu: str, language_menu: str, language: str) -> None:
    """Settings ▸ Language ▸ ``language`` through the menu bar, then confirm the reload dialog
    (the one dialog this test expects), and wait for the reloaded page's menu bar."""
    from playwright.sync_api import expect

    menu_bar = _menu_bar(page)
    menu_bar.get_by_text(settings_menu, exact=True).click()
    page.locator(".lm-Menu-item", has_text=language_menu).first.hover()
    item = page.locator(".lm-Menu-item", has_text=language).last
    expect(item).to_be_visible()
    with page.expect_event("load", timeout=60_000):
        item.click()
        page.locator(".jp-Dialog .jp-mod-accept").click()
    expect(menu_bar).to_be_visible(timeout=60_000)


def test_translations_listing_names_zh_cn(lab_server: UIServer) -> None:
    """``/lab/api/translations`` (what the Language menu is built from) lists ``zh_CN`` with the
    display names jupyterlab_server gives, named in English while English is current."""
    listing = lab_server.api("GET", "lab/api/translations")
    assert listing["message"] == ""
    assert listing["data"]["en"] == {"displayName": "English", "nativeName": "English"}
    assert listing["data"]["zh_CN"] == {"displayName": "Chinese (Simplified, China)", "nativeName": CHINESE}


def test_lab_switches_to_simplified_chinese_and_back(
    lab_server: UIServer, lab_page: tuple[Any, Recorder]
) -> None:
    """English "File" -> Settings ▸ Language ▸ 中文 -> reload -> "文件" (and the setting saved as
    ``zh_CN``) -> 设置 ▸ 语言 ▸ English -> reload -> "File" again."""
    from playwright.sync_api import expect

    page, recorder = lab_page
    page.goto(lab_server.url(f"lab?token={TOKEN}"))
    menu_bar = _menu_bar(page)
    expect(menu_bar).to_be_visible(timeout=60_000)
    expect(menu_bar.get_by_text("File", exact=True)).to_be_visible()

    _pick_language(page, "Settings", "Language", CHINESE)
    expect(menu_bar.get_by_text("文件", exact=True)).to_be_visible(timeout=60_000)
    expect(menu_bar.get_by_text("File", exact=True)).to_have_count(0)
    saved = lab_server.api("GET", f"lab/api/settings/{LOCALE_SETTINGS}")
    assert saved["settings"]["locale"] == "zh_CN"
    assert any(url.split("?")[0].endswith("/lab/api/translations/zh_CN") for _, _, url in recorder.responses)
    no_error_dialog(page)
    names = lab_server.api("GET", "lab/api/translations")["data"]
    assert names["en"]["displayName"] == "英语"  # the listing follows the chosen language

    _pick_language(page, "设置", "语言", "English")
    expect(menu_bar.get_by_text("File", exact=True)).to_be_visible(timeout=60_000)
    expect(menu_bar.get_by_text("文件", exact=True)).to_have_count(0)
    assert lab_server.api("GET", f"lab/api/settings/{LOCALE_SETTINGS}")["settings"]["locale"] == "en"
    no_error_dialog(page)


def test_settings_editor_shows_schema_strings_in_chinese(
    lab_server: UIServer, lab_page: tuple[Any, Recorder]
) -> None:
    """In Chinese, Settings ▸ Settings Editor ▸ 语言 shows the plugin's property titles in
    Chinese ("Language locale" -> "语言区域设置"): the frontend translates menu labels and
    plugin names itself but takes property titles and descriptions from the schema as served,
    which jupyterlab_server translates (these steps pass against jupyter_server 2.21)."""
    from playwright.sync_api import expect

    page, _ = lab_page
    lab_server.api("PUT", f"lab/api/settings/{LOCALE_SETTINGS}", {"raw": '{"locale": "zh_CN"}'})
    page.goto(lab_server.url(f"lab?token={TOKEN}"))
    menu_bar = _menu_bar(page)
    expect(menu_bar.get_by_text("文件", exact=True)).to_be_visible(timeout=60_000)
    menu_bar.get_by_text("设置", exact=True).click()
    page.locator(".lm-Menu-item", has_text="设置编辑器").first.click()
    page.locator(".jp-PluginList-entry", has_text="语言").first.click()
    form = page.locator(".jp-SettingsPanel")
    chinese, english = (form.get_by_text(title, exact=True) for title in ("语言区域设置", "Language locale"))
    expect(chinese.or_(english)).to_be_visible()  # the form is there, in one language or the other
    expect(chinese).to_be_visible()
    no_error_dialog(page)

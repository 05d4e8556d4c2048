"""The UI's files, read as files: the catalogues are complete and agree, the markup holds no
hard-coded text, every module import resolves, and the scripts never parse strings as HTML."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from nbserver.ui.assets import LANGUAGES, STATIC_DIR, catalogue, import_map, script_json

TEMPLATES = sorted((STATIC_DIR / "templates").glob("*.html"))
SCRIPTS = sorted((STATIC_DIR / "js").rglob("*.js"))
LOGIN_HANDLERS = STATIC_DIR.parent / "auth" / "handlers.py"  # the login form's labels and errors
EXPRESSION = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
NAMESPACES = "nav|dialog|error|login|tree|upload|running|status|nb|save|edit|view|language"
KEY_LITERAL = re.compile(rf"""["'`]((?:{NAMESPACES})\.[a-zA-Z]+)["'`]""")
KERNEL_STATES = ("starting", "idle", "busy", "restarting", "dead", "disconnected")


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    english = catalogue("en")
    for lang in LANGUAGES:
        messages = catalogue(lang)
        assert set(messages) == set(english), lang
        for key, message in messages.items():
            assert message.strip(), (lang, key)
            assert set(re.findall(r"\{\w+\}", message)) == set(re.findall(r"\{\w+\}", english[key])), (
                lang,
                key,
            )
    assert catalogue("zh")["tree.new"] == "新建"


def keys_used() -> set[str]:
    used: set[str] = set()
    for template in TEMPLATES:
        text = template.read_text()
        used.update(re.findall(r'data-i18n(?:-[a-z-]+)?="([\w.]+)"', text))
        used.update(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", text))
    for script in [*SCRIPTS, LOGIN_HANDLERS]:
        used.update(k for k in KEY_LITERAL.findall(script.read_text()) if not k.endswith(".html"))
    # keys built at run time: `status.${state}` and `tree.${action}`
    used.update(f"status.{state}" for state in KERNEL_STATES)
    used.update(f"tree.{action}" for action in ("rename", "duplicate", "delete"))
    return used


def test_every_key_in_use_is_in_the_catalogue() -> None:
    used = keys_used()
    assert len(used) > 80
    assert used - set(catalogue("en")) == set()


def test_every_catalogue_key_is_used() -> None:
    unused = set(catalogue("en")) - keys_used() - {"language.name", "status.unknown"}
    assert unused == set()


class TextFinder(HTMLParser):
    """Text and human-readable attributes that are not template expressions."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("title", "alt", "placeholder", "aria-label") and value:
                self.check(value)

    def handle_data(self, data: str) -> None:
        self.check(data)

    def check(self, text: str) -> None:
        rest = EXPRESSION.sub("", text)
        if any(c.isalpha() for c in rest) and rest.strip() != "nbserver":  # the product's name
            self.found.append(rest.strip())


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_hold_no_hard_coded_text(template: Path) -> None:
    finder = TextFinder()
    source = template.read_text()
    finder.feed(re.sub(r"<script\b.*?</script>", "", source, flags=re.S))
    assert finder.found == []


def relative_imports(script: Path) -> list[str]:
    return re.findall(
        r"""^\s*(?:import|export)\b[^;]*?\bfrom\s+["'](\.{1,2}/[^"']+)["']""", script.read_text(), re.M
    )


def test_module_imports_resolve_and_are_in_the_import_map() -> None:
    mapped = import_map("/")["imports"]
    reachable = {STATIC_DIR / "js" / "pages" / p.name for p in (STATIC_DIR / "js" / "pages").glob("*.js")}
    for script in SCRIPTS:
        for target in relative_imports(script):
            resolved = (script.parent / target).resolve()
            assert resolved.is_file(), f"{script.name} imports missing {target}"
            url = "/static/" + resolved.relative_to(STATIC_DIR).as_posix()
            assert url in mapped, url
            reachable.add(resolved)
    assert set(SCRIPTS) == reachable, "every module is a page or is imported by one"


def test_every_page_template_has_its_entry_module() -> None:
    for template in TEMPLATES:
        if template.name != "base.html":
            assert (STATIC_DIR / "js" / "pages" / template.with_suffix(".js").name).is_file(), template.name


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(STATIC_DIR).as_posix())
def test_scripts_never_parse_strings_as_html(script: Path) -> None:
    source = re.sub(r"^\s*//.*$|/\*.*?\*/", "", script.read_text(), flags=re.M | re.S)  # code, not comments
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "DOMParser",
    ):
        assert sink not in source, sink
    if "srcdoc" in source:  # the one place: text/html outputs, in a sandboxed frame without scripts
        assert script.name == "outputs.js"
        assert 'sandbox: "allow-same-origin"' in source


def test_script_json_cannot_end_a_script_element() -> None:
    text = script_json({"path": "</script><!--<script>&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"path": "</script><!--<script>&"}

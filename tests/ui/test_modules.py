"""Unit tests of the browser modules that turn untrusted text into DOM (Markdown, ANSI colours,
outputs), run in the real browser by importing them into a page of the server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import UIServer, requires_chromium

pytestmark = requires_chromium

RENDER_MARKDOWN = """async ([source]) => {
    const { renderMarkdown } = await import("/static/js/notebook/markdown.js");
    const box = document.createElement("div");
    const resolve = (url, image) => (image ? "/files/" : "/view/") + url;
    box.append(renderMarkdown(source, { resolve, attachments: { "a.png": { "image/png": "iVBORw0=" } } }));
    return box.innerHTML;
}"""

MARKDOWN = [
    ("# Title", "<h1>Title</h1>"),
    ("### *Sub* title ###", "<h3><em>Sub</em> title</h3>"),
    ("a *b* **c** `d` ~~e~~", "<p>a <em>b</em> <strong>c</strong> <code>d</code> <del>e</del></p>"),
    ("snake_case_name and 2*3*4", "<p>snake_case_name and 2<em>3</em>4</p>"),
    ("line one\nline two", "<p>line one\nline two</p>"),
    ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
    ("<img src=x onerror=alert(1)>", "<p>&lt;img src=x onerror=alert(1)&gt;</p>"),
    ("[x](javascript:alert(1))", "<p><span>x</span></p>"),
    ("[x](JAVASCRIPT:alert(1))", "<p><span>x</span></p>"),
    ("[x](//evil.example/a)", "<p><span>x</span></p>"),
    (
        '[x](https://a.example "T")',
        '<p><a href="https://a.example" title="T" target="_blank" rel="noopener noreferrer">x</a></p>',
    ),
    ("[sec](#results)", '<p><a href="#results">sec</a></p>'),
    (
        "[nb](other.ipynb)",
        '<p><a href="/view/other.ipynb" target="_blank" rel="noopener noreferrer">nb</a></p>',
    ),
    ("![i](pic.png)", '<p><img src="/files/pic.png" alt="i"></p>'),
    ("![i](data:text/html,x)", "<p>i</p>"),
    ("![i](attachment:a.png)", '<p><img src="data:image/png;base64,iVBORw0=" alt="i"></p>'),
    (
        "see https://a.example/x.",
        '<p>see <a href="https://a.example/x" target="_blank" rel="noopener noreferrer">https://a.example/x</a>.</p>',
    ),
    (
        "- a\n- b\n  - c\n\n1. x\n2. y",
        "<ul><li>a</li><li><p>b</p><ul><li>c</li></ul></li></ul><ol><li>x</li><li>y</li></ol>",
    ),
    ("3. three", '<ol start="3"><li>three</li></ol>'),
    ("```python\nx < 1\n```", '<pre><code class="language-python">x &lt; 1</code></pre>'),
    ("    indented\n    code", "<pre><code>indented\ncode</code></pre>"),
    (
        "| a | b |\n|---|--:|\n| 1 | 2 |",
        '<table><thead><tr><th>a</th><th style="text-align: right;">b</th></tr></thead>'
        '<tbody><tr><td>1</td><td style="text-align: right;">2</td></tr></tbody></table>',
    ),
    ("$x^2$ costs $5", '<p><span class="math">x^2</span> costs $5</p>'),
    ("$$\n\\int f\n$$", '<div class="math math-display">\\int f</div>'),
    ("> quoted *text*", "<blockquote><p>quoted <em>text</em></p></blockquote>"),
    ("---", "<hr>"),
    ("a \\*not em\\*", "<p>a *not em*</p>"),
]

ANSI = """async () => {
    const { ansiToFragment, fixCarriageReturns } = await import("/static/js/notebook/ansi.js");
    const html = (text) => {
        const box = document.createElement("pre");
        box.append(ansiToFragment(text));
        return box.innerHTML;
    };
    return {
        basic: html("\\x1b[31mred\\x1b[0m plain\\x1b[1;32mg\\x1b[K"),
        c256: html("\\x1b[38;5;196mx\\x1b[48;2;1;2;3my"),
        markup: html("\\x1b[34m<b>&amp;</b>"),
        cr: fixCarriageReturns("10%\\r50%\\r100%\\nend\\r\\n"),
    };
}"""

OUTPUTS = """async () => {
    const { renderMimeBundle, renderOutput } = await import("/static/js/notebook/outputs.js");
    const describe = (el) => ({ tag: el.tagName, cls: el.className, text: el.textContent,
        src: el.getAttribute("src"), sandbox: el.getAttribute("sandbox") });
    return {
        html: describe(renderMimeBundle({ "text/html": "<b>x</b>", "text/plain": "x" }, {})),
        svg: describe(renderMimeBundle({ "image/svg+xml": "<svg onload='alert(1)'/>" }, {})),
        png: describe(renderMimeBundle({ "image/png": "iVBO\\nRw0=" }, {})),
        json: describe(renderMimeBundle({ "application/json": { a: [1] } }, {})),
        markdown: renderMimeBundle({ "text/markdown": "# M" }, {}).innerHTML,
        plain: renderMimeBundle({ "text/plain": ["\\x1b[31mE", "\\x1b[0m!"] }, {}).innerHTML,
        unknown: describe(renderMimeBundle({ "application/x-thing": 1 }, {})),
        stderr: describe(renderOutput({ output_type: "stream", name: "stderr", text: "oops\\n" })),
        error: describe(renderOutput({ output_type: "error", ename: "E", evalue: "v", traceback: [] })),
    };
}"""


@pytest.fixture(scope="module")
def module_page(browser: Any, ui_server: UIServer, login_state: dict[str, Any]) -> Any:
    context = browser.new_context(storage_state=login_state, locale="en-US")
    page = context.new_page()
    page.goto(ui_server.ui_url("tree"))
    page.locator("html[data-ready=true]").wait_for(state="attached")
    yield page
    context.close()


def test_markdown(module_page: Any) -> None:
    wrong = []
    for source, expected in MARKDOWN:
        got = module_page.evaluate(RENDER_MARKDOWN, [source])
        if got != expected:
            wrong.append(f"{source!r}:\n  got      {got}\n  expected {expected}")
    assert not wrong, "\n".join(wrong)


def test_ansi_colours(module_page: Any) -> None:
    result = module_page.evaluate(ANSI)
    assert (
        result["basic"]
        == '<span class="ansi-red-fg">red</span> plain<span class="ansi-bold ansi-green-fg">g</span>'
    )
    assert result["c256"] == (
        '<span style="color: rgb(255, 0, 0);">x</span>'
        '<span style="color: rgb(255, 0, 0); background-color: rgb(1, 2, 3);">y</span>'
    )
    assert result["markup"] == '<span class="ansi-blue-fg">&lt;b&gt;&amp;amp;&lt;/b&gt;</span>'
    assert result["cr"] == "100%\nend\n"


def test_outputs(module_page: Any) -> None:
    result = module_page.evaluate(OUTPUTS)
    assert result["html"]["tag"] == "IFRAME" and result["html"]["sandbox"] == "allow-same-origin"
    assert result["svg"]["tag"] == "IMG" and result["svg"]["src"].startswith("data:image/svg+xml;base64,")
    assert result["png"]["src"] == "data:image/png;base64,iVBORw0="
    assert result["json"] == {**result["json"], "tag": "PRE", "text": '{\n  "a": [\n    1\n  ]\n}'}
    assert result["markdown"] == "<h1>M</h1>"
    assert result["plain"] == '<span class="ansi-red-fg">E</span>!'
    assert "application/x-thing" in result["unknown"]["text"]
    assert result["stderr"]["cls"] == "output-stream output-stderr" and result["stderr"]["text"] == "oops\n"
    assert result["error"]["text"] == "E: v"

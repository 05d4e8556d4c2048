"""Pure tests of the contents model rules (:mod:`nbserver.services.contents.models`): bytes and
dicts in, bytes and dicts out, no I/O."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from nbserver.context import isoformat
from nbserver.errors import BadRequest
from nbserver.services.contents import models

MODEL_KEYS = {
    "name",
    "path",
    "type",
    "writable",
    "created",
    "last_modified",
    "mimetype",
    "content",
    "format",
    "size",
    "hash",
    "hash_algorithm",
}

#: a markdown cell with a property the schema forbids: readable, but fails validation
BOGUS_CELLS = [{"cell_type": "markdown", "metadata": {}, "source": "x", "bogus": 1}]


def notebook(**overrides: Any) -> dict[str, Any]:
    nb: dict[str, Any] = json.loads(models.new_notebook_bytes())
    nb.update(overrides)
    return nb


# -- timestamps, base model, mimetypes, hashes ----------------------------------------------------


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
@example(0.0)
@example(1e9 + 0.5)
def test_timestamp_is_jupyter_iso8601(seconds: float) -> None:
    """Same text as the server-wide ``context.isoformat`` of that UTC moment, ending in ``Z``."""
    text = models.timestamp(seconds)
    assert text == isoformat(datetime.fromtimestamp(seconds, timezone.utc))
    assert text.endswith("Z") and "+" not in text
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert abs(parsed.timestamp() - seconds) < 1e-5


@pytest.mark.parametrize(
    "seconds", [0.9999995, 0.0000005, 0.0000015, 1763776593.9999996, 1763776593.0000005, -0.5, -1.0000005]
)
def test_timestamp_rounds_microseconds_as_datetime_does(seconds: float) -> None:
    """Half-to-even rounding at the microsecond, carries into the next second, negatives:
    the cached-per-second formatting must spell what ``datetime.fromtimestamp`` spells."""
    expected = datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")
    assert models.timestamp(seconds) == expected


@pytest.mark.parametrize("impossible", [1e300, float("nan"), -1e300, float("inf")])
def test_impossible_timestamp_is_the_epoch(impossible: float) -> None:
    assert models.timestamp(impossible) == "1970-01-01T00:00:00Z"


def test_base_model_has_every_jupyter_field() -> None:
    model = models.base_model("a/b.txt", "file", created="c", last_modified="m", size=3, writable=True)
    assert set(model) == MODEL_KEYS
    assert model["name"] == "b.txt" and model["path"] == "a/b.txt"
    assert model["content"] is model["format"] is model["hash"] is model["hash_algorithm"] is None
    assert (
        models.base_model("", "directory", created="c", last_modified="m", size=None, writable=True)["name"]
        == ""
    )


@pytest.mark.parametrize(
    ("name", "format", "mimetype"),
    [
        ("a.txt", None, "text/plain"),
        ("a.png", "base64", "image/png"),
        ("noext", "text", "text/plain"),
        ("noext", "base64", "application/octet-stream"),
        ("a.unknownext", "base64", "application/octet-stream"),
    ],
)
def test_guess_mimetype(name: str, format: str | None, mimetype: str) -> None:
    assert models.guess_mimetype(name, format) == mimetype


def test_file_hash_is_sha256_of_the_bytes() -> None:
    assert models.HASH_ALGORITHM == "sha256"
    assert models.file_hash(b"abc") == hashlib.sha256(b"abc").hexdigest()


# -- file content --------------------------------------------------------------------------------


@given(st.binary())
def test_bytes_round_trip_through_the_default_format(raw: bytes) -> None:
    """No format: UTF-8 text when it decodes, base64 otherwise; either encodes back exactly."""
    content, fmt = models.decode_file(raw, None)
    assert fmt in ("text", "base64")
    assert models.encode_file(content, fmt) == raw


@given(st.binary())
def test_bytes_round_trip_through_base64(raw: bytes) -> None:
    content, fmt = models.decode_file(raw, "base64")
    assert fmt == "base64"
    assert models.encode_file(content, "base64") == raw


@given(st.text().filter(lambda s: not any("\ud800" <= c <= "\udfff" for c in s)))
def test_text_round_trips(text: str) -> None:
    assert models.decode_file(models.encode_file(text, "text"), "text") == (text, "text")


def test_decode_text_of_binary_is_bad_format() -> None:
    """Bad input: ``b"\\xff"`` asked for as text."""
    with pytest.raises(BadRequest) as info:
        models.decode_file(b"\xff\xfe", "text")
    assert info.value.reason == "bad format"


@pytest.mark.parametrize(
    ("content", "format"),
    [
        ("x", "json"),  # unknown format
        ("x", None),  # no format
        (b"x", "text"),  # not a string
        (["x"], "base64"),
        ("not base64!", "base64"),  # invalid alphabet
        ("YW*j", "base64"),  # a character outside the alphabet
        ("é", "base64"),  # not ASCII
        ("\ud800", "text"),  # lone surrogate
    ],
)
def test_encode_file_bad_inputs_are_bad_format(content: Any, format: Any) -> None:
    with pytest.raises(BadRequest) as info:
        models.encode_file(content, format)
    assert info.value.reason == "bad format"


def test_encode_file_accepts_base64_with_line_breaks() -> None:
    assert models.encode_file("YWJj\nZA==\r\n", "base64") == b"abcd"


def test_notebook_cells_without_ids_are_read_and_saved() -> None:
    """A v4.5 notebook whose cells lack ids (written by old tools) is not a bad notebook."""
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "code", "source": "1", "metadata": {}, "outputs": [], "execution_count": None}
        ],
    }
    read, message = models.read_notebook(json.dumps(nb).encode())
    assert message is None and read["cells"][0]["id"]
    data, message = notebook_bytes(json.loads(json.dumps(nb)))
    assert message is None and json.loads(data)["cells"][0]["id"]


# -- notebooks -----------------------------------------------------------------------------------


def notebook_bytes(content: Any) -> tuple[bytes, str | None]:
    request = models.notebook_request(content)
    assert request.type == "notebook" and request.data is not None
    return request.data, request.message


def test_read_notebook_valid() -> None:
    nb, message = models.read_notebook(models.new_notebook_bytes())
    assert message is None
    assert nb["nbformat"] == 4 and nb["cells"] == []


def test_read_notebook_invalid_but_readable_has_a_message() -> None:
    """Bad input: a markdown cell with an unknown property: still returned, with a message."""
    nb = notebook(nbformat_minor=4, cells=BOGUS_CELLS)
    content, message = models.read_notebook(json.dumps(nb).encode())
    assert content["cells"][0]["source"] == "x"
    assert message is not None and "bogus" in message


@pytest.mark.parametrize("raw", [b"not json", b"{}", b"[1, 2]", b'{"nbformat": 99}', b"\xff\xfe"])
def test_read_notebook_unreadable_is_bad_notebook(raw: bytes) -> None:
    """Bad inputs: not JSON, not a notebook object, unknown nbformat, not UTF-8."""
    with pytest.raises(BadRequest) as info:
        models.read_notebook(raw)
    assert info.value.reason == "bad notebook"


def test_notebook_request_round_trip_and_v3_upgrade() -> None:
    nb = notebook(cells=[{"cell_type": "markdown", "id": "c1", "metadata": {}, "source": "# hi"}])
    raw, message = notebook_bytes(nb)
    assert message is None
    assert models.read_notebook(raw)[0]["cells"][0]["source"] == "# hi"
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": []}]}
    assert json.loads(notebook_bytes(v3)[0])["nbformat"] == 4


def test_notebook_request_keeps_an_invalid_notebook_with_a_message() -> None:
    """Bad input: an unknown cell property: stored anyway (never lose work), with a message."""
    nb = notebook(nbformat_minor=4, cells=BOGUS_CELLS)
    raw, message = notebook_bytes(nb)
    assert message is not None and json.loads(raw)["cells"][0]["bogus"] == 1


@pytest.mark.parametrize("content", ["text", [], {"cells": "nope"}, None])
def test_notebook_request_of_a_non_notebook_is_bad_notebook(content: Any) -> None:
    """Bad inputs: a string, a list, cells that are not a list, null."""
    with pytest.raises(BadRequest) as info:
        notebook_bytes(content)
    assert info.value.reason == "bad notebook"


# -- parse_save_model ------------------------------------------------------------------------------


def test_parse_save_model_accepts_each_type() -> None:
    assert models.parse_save_model({"type": "directory"}).data is None
    text = models.parse_save_model({"type": "file", "format": "text", "content": "hé"})
    assert (text.type, text.data, text.chunk) == ("file", "hé".encode(), None)
    b64 = models.parse_save_model(
        {"type": "file", "format": "base64", "content": base64.b64encode(b"\x00\xff").decode(), "chunk": -1}
    )
    assert (b64.data, b64.chunk) == (b"\x00\xff", -1)
    nb = models.parse_save_model({"type": "notebook", "format": "json", "content": notebook()})
    assert nb.type == "notebook" and nb.message is None
    assert json.loads(nb.data or b"")["nbformat"] == 4


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("a string", "bad model"),  # not an object
        ([], "bad model"),
        ({"type": "file", "copy_from": "a.txt"}, "bad model"),  # copy is POST-only
        ({"content": "x", "format": "text"}, "bad model"),  # no type
        ({"type": "symlink", "content": "x"}, "bad model"),  # unknown type
        ({"type": "file", "format": "text"}, "bad model"),  # no content
        ({"type": "file", "format": "text", "content": None}, "bad model"),
        ({"type": "notebook", "content": {}, "chunk": 1}, "bad model"),  # chunks are files only
        ({"type": "file", "format": "text", "content": "x", "chunk": 0}, "bad model"),
        ({"type": "file", "format": "text", "content": "x", "chunk": -2}, "bad model"),
        ({"type": "file", "format": "text", "content": "x", "chunk": True}, "bad model"),
        ({"type": "file", "format": "text", "content": "x", "chunk": "1"}, "bad model"),
        ({"type": "file", "format": "text", "content": "x", "chunk": 1.5}, "bad model"),
        ({"type": "file", "content": "x"}, "bad format"),  # a file needs a format
        ({"type": "file", "format": "base64", "content": "!!"}, "bad format"),
        ({"type": "notebook", "format": "text", "content": {}}, "bad format"),
        ({"type": "notebook", "content": "not a notebook"}, "bad notebook"),
        ({"type": "notebook", "content": {"cells": {}}}, "bad notebook"),
    ],
)
def test_parse_save_model_bad_inputs(body: Any, reason: str) -> None:
    with pytest.raises(BadRequest) as info:
        models.parse_save_model(body)
    assert info.value.reason == reason


def test_parse_save_model_keeps_the_validation_message() -> None:
    nb = notebook(nbformat_minor=4, cells=BOGUS_CELLS)
    request = models.parse_save_model({"type": "notebook", "content": nb})
    assert request.message is not None and "bogus" in request.message


# -- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "taken", "insert", "expected"),
    [
        ("a.txt", set(), "", "a.txt"),
        ("a.txt", {"a.txt"}, "", "a1.txt"),
        ("a.txt", {"a.txt", "a1.txt"}, "", "a2.txt"),
        ("a.tar.gz", {"a.tar.gz"}, "", "a1.tar.gz"),  # before the first dot
        ("a.b.ipynb", {"a.b.ipynb"}, "", "a.b1.ipynb"),  # before the last dot for notebooks
        ("a.ipynb", {"a.ipynb"}, "-Copy", "a-Copy1.ipynb"),
        ("Makefile", {"Makefile"}, "", "Makefile1"),
        (".bashrc", {".bashrc"}, "", ".bashrc1"),
    ],
)
def test_increment_name(name: str, taken: set[str], insert: str, expected: str) -> None:
    assert models.increment_name(name, taken.__contains__, insert) == expected


@given(st.sampled_from(["a.txt", "x.ipynb", "noext", "a.tar.gz"]), st.integers(0, 20))
def test_increment_name_finds_the_first_free_number(name: str, count: int) -> None:
    taken: set[str] = set()
    for _ in range(count):
        taken.add(models.increment_name(name, taken.__contains__))
    assert len(taken) == count
    fresh = models.increment_name(name, taken.__contains__)
    assert fresh not in taken


def test_untitled_names() -> None:
    none: set[str] = set()
    assert models.untitled_name("notebook", "", none.__contains__) == "Untitled.ipynb"
    assert models.untitled_name("notebook", ".txt", {"Untitled.ipynb"}.__contains__) == "Untitled1.ipynb"
    assert models.untitled_name("file", ".txt", none.__contains__) == "untitled.txt"
    assert models.untitled_name("file", "", {"untitled"}.__contains__) == "untitled1"
    assert models.untitled_name("directory", ".x", none.__contains__) == "Untitled Folder"
    taken = {"Untitled Folder"}
    assert models.untitled_name("directory", "", taken.__contains__) == "Untitled Folder 1"


_names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1)  # no lone surrogates


@given(st.lists(st.tuples(_names, st.booleans(), st.one_of(st.none(), st.integers(0, 2**63 - 1)))))
def test_listing_encoding_parses_as_the_stdlib_encoding(entries: list[tuple[str, bool, int | None]]) -> None:
    """Big listings are encoded with orjson (contents.handlers._encode): whatever the names, the
    body parses to the same value as the stdlib's."""
    from nbserver.services.contents.handlers import _encode
    from nbserver.web import encode_json

    model = models.base_model("d", "directory", created="c", last_modified="m", size=None, writable=True)
    model["content"] = [
        models.base_model(f"d/{name}", "file", created="c", last_modified="m", size=size, writable=w)
        for name, w, size in entries
    ]
    assert json.loads(_encode(model)) == json.loads(encode_json(model)) == model

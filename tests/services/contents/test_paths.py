"""Pure tests of the API path rules (:mod:`nbserver.services.contents.paths`): no I/O."""

from __future__ import annotations

import fnmatch
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from nbserver.errors import NotFound
from nbserver.services.contents import paths

# Characters that make paths interesting: separators, dots, drive colons, controls, non-ASCII.
path_text = st.text(alphabet=st.sampled_from("ab./\\:C\x00\x1f\x7f\n é~"), max_size=24) | st.text(max_size=24)
names = st.text(alphabet=st.characters(blacklist_characters="/\\", blacklist_categories=("Cs",)), min_size=1)

C0_OR_DEL = re.compile(r"[\x00-\x1f\x7f]")


@given(path_text)
@example("..")
@example("a/../b")
@example("%2e%2e")  # tornado decodes the URL first; the raw form is just a name
@example("/etc/passwd")
@example("C:\\x")
@example("C:/x")
@example("//server/share")
@example("a\x00b")
def test_normalize_is_safe_and_idempotent(raw: str) -> None:
    """Whatever the input, normalize either refuses it (404 "outside root") or returns a
    relative path without ``..``, ``.`` or empty components, backslashes or control characters;
    normalizing that again changes nothing."""
    try:
        path = paths.normalize(raw)
    except NotFound as exc:
        assert exc.reason == "outside root"
        return
    parts = path.split("/")
    assert not path.startswith("/") and not path.endswith("/")
    assert ".." not in parts and "." not in parts
    assert path == "" or "" not in parts
    assert "\\" not in path and not C0_OR_DEL.search(path)
    assert not re.match(r"[A-Za-z]:", path)
    assert paths.normalize(path) == path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        (None, ""),
        ("/", ""),
        ("a//b/", "a/b"),
        ("./a/./b", "a/b"),
        ("/etc/passwd", "etc/passwd"),  # absolute means "from the root", as in jupyter_server
        ("...", "..."),
        ("a..b/..c", "a..b/..c"),
        ("Untitled Folder/é.txt", "Untitled Folder/é.txt"),
    ],
)
def test_normalize_examples(raw: str | None, expected: str) -> None:
    assert paths.normalize(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "..",
        "../x",
        "a/../../x",
        "a/..",
        "/../x",
        "C:\\x",
        "C:/x",
        "/c:/x",
        "a\\b",
        "\\\\server\\share",
        "a\x00b",
        "a\nb",
        "tab\there",
        "del\x7f",
    ],
)
def test_normalize_refuses(raw: str) -> None:
    """``..``, drive letters, backslashes and control characters: 404 "outside root"."""
    with pytest.raises(NotFound) as info:
        paths.normalize(raw)
    assert info.value.reason == "outside root"
    assert info.value.status == 404


@given(st.lists(names.filter(lambda n: n not in (".", "..")), max_size=4))
def test_split_and_join_are_inverse(parts: list[str]) -> None:
    path = "/".join(parts)
    parent, name = paths.split(path)
    assert paths.join(parent, name) == path
    assert name == (parts[-1] if parts else "")


def test_split_and_join_examples() -> None:
    assert paths.split("a/b/c.txt") == ("a/b", "c.txt")
    assert paths.split("c.txt") == ("", "c.txt")
    assert paths.split("") == ("", "")
    assert paths.join("", "c.txt") == "c.txt"
    assert paths.join("a/b", "c.txt") == "a/b/c.txt"


@pytest.mark.parametrize(
    ("path", "hidden"),
    [("", False), ("a", False), (".a", True), ("a/.b/c", True), ("a.b/c.d", False), ("a/b/.c", True)],
)
def test_is_hidden(path: str, hidden: bool) -> None:
    assert paths.is_hidden(path) is hidden


@pytest.mark.parametrize(
    ("name", "allow_hidden", "listed"),
    [
        ("a.py", False, True),
        (".bashrc", False, False),
        (".bashrc", True, True),
        ("__pycache__", True, False),
        ("x.pyc", True, False),
        ("x.pyo", False, False),
        (".DS_Store", True, False),
        ("notes.txt~", True, False),
        ("x.pyc.txt", False, True),
        ("X.PYC", False, True),  # globs are case-sensitive, as jupyter_server's fnmatchcase
    ],
)
def test_is_listed(name: str, allow_hidden: bool, listed: bool) -> None:
    assert paths.is_listed(name, allow_hidden) is listed


@given(names)
@example("__pycache__")
@example("a\n.pyc")
def test_is_listed_matches_the_globs(name: str) -> None:
    """One compiled pattern decides exactly what fnmatchcase over HIDE_GLOBS would."""
    by_glob = any(fnmatch.fnmatchcase(name, glob) for glob in paths.HIDE_GLOBS)
    assert paths.is_listed(name, allow_hidden=True) is not by_glob

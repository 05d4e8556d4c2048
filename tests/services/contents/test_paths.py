"""Pure tests of the API path rules (:mod:`nbserver.services.contents.paths`): no I/O; then the
whole path resolution (``normalize``, then :class:`~nbserver.services.contents.fileio.Root`'s
realpath confinement) on a temporary root full of symlinks that lead out of it.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nbserver.errors import NBServerError, NotFound
from nbserver.services.contents import fileio, paths

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


# -- resolution: normalize, then realpath confinement ---------------------------------------------

#: entries of the test root: a directory and a file inside, and symlinks that lead out of the
#: root (absolute, relative, to "/", through another link, to a sibling whose name starts with
#: the root's name, in a loop, dangling outside) or stay in it
LINKS = {
    "out-abs": "{outside}",
    "out-rel": "../outside",
    "out-slash": "/",
    "out-sibling": "../root-evil",
    "out-chain": "in-link/../../outside",
    "in-link": "dir",
    "loop-a": "loop-b",
    "loop-b": "loop-a",
    "dangling-out": "../outside/missing/deeper",
    "dir/up": "..",
    "dir/up2": "../..",
    "dir/file-link": "../file.txt",
}


@pytest.fixture(scope="module")
def linked_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fileio.Root]:
    base = tmp_path_factory.mktemp("resolve")
    root, outside = base / "root", base / "outside"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "file.txt").write_text("in")
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (base / "root-evil").mkdir()
    (base / "root-evil" / "secret.txt").write_text("secret")
    for name, target in LINKS.items():
        os.symlink(target.format(outside=outside), root / name)
    yield fileio.Root(root)


components = st.sampled_from(
    [
        *LINKS,
        "dir",
        "sub",
        "file.txt",
        "secret.txt",
        "missing",
        "..",
        ".",
        "",
        "%2e%2e",
        "%2E%2e",
        "..%2f..",
        "%2F",
        "\\",
        "..\\..",
        "a\x00b",
        "C:",
        "\u00e9t\u00e9",
        "\u202e",
        "\U0001f600",
        "x" * 300,
    ]
) | st.text(max_size=12)
raw_paths = st.builds(
    lambda lead, parts, trail: lead + "/".join(parts) + trail,
    st.sampled_from(["", "/", "//", "./", "\\", "C:/", "%2F"]),
    st.lists(components, max_size=8),
    st.sampled_from(["", "/", "/."]),
) | st.text(alphabet=st.sampled_from("ab./\\%2e\x00"), max_size=40)


def resolve(root: fileio.Root, raw: str) -> str:
    """What the contents manager reads for an API path: normalize, then the realpath."""
    return root.real(paths.normalize(raw))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw_paths, st.booleans())
@example("out-abs/secret.txt", False)
@example("out-sibling/secret.txt", False)
@example("dir/up2/outside/secret.txt", False)
@example("%2e%2e/outside", True)
@example("/" + "x" * 5000, False)
@example("/".join(["dir", "up"] * 200), False)
def test_no_path_resolves_outside_the_root(linked_root: fileio.Root, raw: str, decoded: bool) -> None:
    """Whatever the path (raw, or percent-decoded once more as a client might send it), it
    resolves to the root or strictly inside it, to a fully resolved path, or the contents
    error (NotFound, "outside root"; never an OSError) is raised. The entry used by renames
    and deletes (the link itself) is in a directory inside the root too."""
    raw = unquote(raw) if decoded else raw
    root = linked_root.path
    try:
        real = resolve(linked_root, raw)
    except NBServerError as exc:
        assert exc.status in (400, 404), exc
        return
    assert real == root or real.startswith(root + os.sep), (raw, real)
    assert os.path.realpath(real) == real
    relative = os.path.relpath(real, root)
    assert relative != ".." and not relative.startswith(".." + os.sep)
    path = paths.normalize(raw)
    if path:
        entry, target = linked_root.entry(path)
        assert os.path.dirname(entry) == root or os.path.dirname(entry).startswith(root + os.sep)
        assert target == real


@pytest.mark.parametrize(
    "name", ["out-abs", "out-rel", "out-slash", "out-sibling", "out-chain", "dangling-out"]
)
def test_each_link_out_of_the_root_is_refused(linked_root: fileio.Root, name: str) -> None:
    for raw in (name, f"{name}/secret.txt", f"/{name}/", f"dir/up/{name}", f"in-link/up/{name}/x"):
        with pytest.raises(NotFound) as info:
            resolve(linked_root, raw)
        assert info.value.reason == "outside root"


@pytest.mark.parametrize(
    ("raw", "inside"),
    [
        ("in-link/sub", "dir/sub"),
        ("dir/up/file.txt", "file.txt"),
        ("dir/file-link", "file.txt"),
        ("dir/up", ""),
    ],
)
def test_links_that_stay_inside_resolve(linked_root: fileio.Root, raw: str, inside: str) -> None:
    expected = str(Path(linked_root.path, inside)) if inside else linked_root.path
    assert resolve(linked_root, raw) == expected

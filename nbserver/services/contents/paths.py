"""API paths: pure rules, no I/O.

An API path names a file or directory relative to the contents root: ``""`` is the root,
``"a/b.ipynb"`` a file in a sub-directory. :func:`normalize` is the single gate every path passes
through before any manager touches storage; it refuses what could escape the root or that no
filesystem can hold, with the same error everywhere (contents, checkpoints and ``/files``):

- ``..`` components (also when percent-encoded: tornado decodes the URL before we see it);
- absolute paths, drive letters and backslashes (``C:\\x``, ``\\\\server``), NUL and other
  control characters.

Symlinks are the filesystem manager's business (it resolves with ``realpath``).
"""

from __future__ import annotations

import fnmatch
import re

from ...errors import NotFound

__all__ = ["HIDE_GLOBS", "is_hidden", "is_listed", "join", "normalize", "split"]

#: names never shown in directory listings (they can still be opened directly), as jupyter_server
HIDE_GLOBS = ("__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~")

_HIDDEN_BY_GLOB = re.compile("|".join(fnmatch.translate(glob) for glob in HIDE_GLOBS))  # one match, not 5
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize(path: str | None) -> str:
    """The canonical form of an API path: no leading, trailing or doubled slashes; ``.`` dropped.

    Raises:
        NotFound: (reason ``"outside root"``) for ``..``, absolute, drive-letter or backslash
            paths and for control characters. 404 rather than 403, as jupyter_server: a path
            outside the root does not exist as far as a client is concerned.
    """
    raw = path or ""
    if _CONTROL.search(raw) or "\\" in raw or _DRIVE.match(raw.lstrip("/")):
        raise NotFound(f"No such file or directory: {raw!r} is not a valid path", reason="outside root")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise NotFound(f"No such file or directory: {raw!r} is outside the root", reason="outside root")
    return "/".join(parts)


def split(path: str) -> tuple[str, str]:
    """``"a/b/c.txt"`` -> ``("a/b", "c.txt")``; ``"c.txt"`` -> ``("", "c.txt")``."""
    parent, _, name = path.rpartition("/")
    return parent, name


def join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def is_hidden(path: str) -> bool:
    """True if any component of a normalized API path starts with a dot."""
    return any(part.startswith(".") for part in path.split("/") if part)


def is_listed(name: str, allow_hidden: bool) -> bool:
    """Whether a directory entry called ``name`` appears in listings."""
    if name.startswith(".") and not allow_hidden:
        return False
    return _HIDDEN_BY_GLOB.match(name) is None

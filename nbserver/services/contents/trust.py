"""Notebook trust, as in Jupyter: a notebook whose outputs the user ran or explicitly trusted is
signed, and its code cells come back marked ``metadata.trusted = true`` (JupyterLab then renders
its HTML and JavaScript outputs instead of sanitizing them).

Signatures live in nbformat's store: the secret and the SQLite database of the Jupyter data
directory (``notebook_secret``, ``nbsignatures.db``), so trust carries over between nbserver and
Jupyter in both directions. SQLite connections belong to the thread that opened them, so the store
is used from one thread of its own; the signature itself is computed by the caller.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .notebooks import Notebook, signature

__all__ = ["Notary"]

T = TypeVar("T")


class Notary:
    """The trust store. Its methods block (file and SQLite I/O): call them from a worker thread.

    Args:
        data_dir: where the secret and the database are (default: Jupyter's data directory).
            Both are created on first use.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.data_dir = os.fspath(data_dir) if data_dir is not None else None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="nbserver-notary")
        self._notary: Any = None  # nbformat's NotebookNotary, opened on the store thread
        self._secret = b""
        self._algorithm = "sha256"

    def _on_thread(self, fn: Any, *args: Any) -> Any:
        return self._thread.submit(fn, *args).result()

    def _open(self) -> None:
        if self._notary is not None:
            return
        from jupyter_core.paths import jupyter_data_dir
        from nbformat.sign import NotebookNotary

        data_dir = self.data_dir or jupyter_data_dir()
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        notary = NotebookNotary(data_dir=data_dir)  # type: ignore[no-untyped-call]
        self._secret, self._algorithm = notary.secret, notary.algorithm
        notary.store  # noqa: B018 - open the database on this thread
        self._notary = notary

    def _digest(self, nb: Notebook) -> str:
        self._on_thread(self._open)
        return signature(nb, self._secret, self._algorithm)

    def is_trusted(self, nb: Notebook) -> bool:
        """Whether ``nb`` (as read: no trust marks) was signed here or by Jupyter."""
        if nb.get("nbformat", 0) < 3:
            return False
        digest = self._digest(nb)
        return bool(self._on_thread(lambda: self._notary.store.check_signature(digest, self._algorithm)))

    def sign(self, nb: Notebook) -> None:
        """Record ``nb`` (as written: no trust marks) as trusted."""
        digest = self._digest(nb)
        self._on_thread(lambda: self._notary.store.store_signature(digest, self._algorithm))

    def close(self) -> None:
        """Close the database; the notary can still be used afterwards (it reopens)."""

        def close() -> None:
            if self._notary is not None:
                self._notary.close()
                self._notary = None

        self._on_thread(close)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data_dir!r})"

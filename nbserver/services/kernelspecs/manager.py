"""Kernelspecs through jupyter_client's ``KernelSpecManager`` (the directories it searches, the
provisioner metadata it reads), behind a small async interface.

Lookups scan directories and read ``kernel.json`` files, so they run in a thread. A spec is
served as jupyter_server models it: ``{name, spec: <kernel.json>, resources: {logo-64x64: url}}``,
where resource URLs are relative to the server's ``base_url`` and filled in by the handler.
The model lists logos, ``kernel.js`` and ``kernel.css``, but every file of the spec's directory
can be fetched (``kernel.json`` included, as with jupyter_server), nothing outside it.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import NotFound

__all__ = ["KernelSpec", "KernelSpecManager"]

#: files listed in a spec's model next to its logos (logo-* files)
_RESOURCE_FILES = ("kernel.js", "kernel.css")


@dataclass(frozen=True)
class KernelSpec:
    name: str
    spec: dict[str, Any]
    resource_dir: Path
    resources: tuple[str, ...]  # the files of resource_dir that the model lists


class KernelSpecManager:
    """Finds installed kernelspecs.

    Args:
        default_name: the kernel started when a request names none; when it is not installed the
            first installed spec (alphabetically) is the default.
        inner: a configured ``jupyter_client.kernelspec.KernelSpecManager`` (default: a new one).
    """

    def __init__(self, *, default_name: str = "python3", inner: Any = None) -> None:
        if inner is None:
            from jupyter_client.kernelspec import KernelSpecManager as JupyterKSM

            inner = JupyterKSM()
        self._inner = inner
        self._default_name = default_name

    @property
    def inner(self) -> Any:
        """The jupyter_client manager, for kernel managers that need it."""
        return self._inner

    async def all(self) -> tuple[str, dict[str, KernelSpec]]:
        """``(default name, {name: spec})``; specs whose ``kernel.json`` is broken are skipped."""
        return await asyncio.to_thread(self._all)

    def _all(self) -> tuple[str, dict[str, KernelSpec]]:
        specs = {}
        for name in sorted(self._inner.find_kernel_specs()):
            try:
                specs[name] = self._load(name)
            except NotFound:
                continue
        default = self._default_name if self._default_name in specs else next(iter(specs), "")
        return default, specs

    async def get(self, name: str) -> KernelSpec:
        """Raises NotFound (reason ``"no such kernelspec"``)."""
        return await asyncio.to_thread(self._load, name)

    async def default_name(self) -> str:
        default, _ = await self.all()
        return default

    def _load(self, name: str) -> KernelSpec:
        from jupyter_client.kernelspec import NoSuchKernel

        try:
            spec = self._inner.get_kernel_spec(name)
        except NoSuchKernel:
            raise NotFound(
                f"No such kernelspec: {name}", reason="no such kernelspec", short_message=f"{name} not found"
            ) from None
        except (OSError, ValueError) as exc:  # unreadable or invalid kernel.json
            raise NotFound(
                f"Kernelspec {name} cannot be read: {exc}",
                reason="no such kernelspec",
                short_message=f"{name} cannot be read",
            ) from exc
        directory = Path(spec.resource_dir)
        try:
            present = set(os.listdir(directory))
        except OSError:
            present = set()
        names = sorted(f for f in present if f.startswith("logo-") or f in _RESOURCE_FILES)
        return KernelSpec(name, spec.to_dict(), directory, tuple(names))

    async def resource(self, name: str, file: str) -> bytes:
        """The bytes of ``file``, a ``/``-separated path relative to the directory of spec
        ``name`` (``kernel.json``, ``logo-64x64.png``, ``sub/file.js``).

        Raises:
            NotFound: unknown spec (``"no such kernelspec"``); ``"no such resource"`` for a
                missing file, a directory, a hidden name (a part starting with ``.``), and any
                path that would leave the directory (``..``, absolute, a symlink whose target
                is outside it).
        """
        spec = await self.get(name)
        parts = file.split("/")
        if any(part == "" or part.startswith(".") or "\0" in part for part in parts):
            raise _no_resource(name, file)
        return await asyncio.to_thread(_read_inside, spec.resource_dir, parts, name, file)


def _no_resource(name: str, file: str) -> NotFound:
    return NotFound(f"Kernelspec {name} has no resource {file!r}", reason="no such resource")


def _read_inside(directory: Path, parts: list[str], name: str, file: str) -> bytes:
    """The file ``directory/<parts>``, once its real path is found inside ``directory``'s."""
    root = os.path.realpath(directory)
    target = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath((root, target)) != root or not os.path.isfile(target):
        raise _no_resource(name, file)
    try:
        with open(target, "rb") as f:
            return f.read()
    except OSError as exc:
        raise NotFound(
            f"Kernelspec {name} resource {file!r} cannot be read", reason="no such resource"
        ) from exc

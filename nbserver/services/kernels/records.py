"""What a server writes down about each running kernel, so that a later server can find it again.

A :class:`KernelRecord` holds what is needed to reach and control a kernel process without having
launched it: the connection info (transport, ip, ports or ipc paths, key, signature scheme), the
process id when the kernel is a local process, and what a restart needs to launch it again
(kernelspec name, working directory, the environment variables the server added). The kernel
manager keeps records through a :class:`KernelRecords` store (the ``kernel`` table of the session
store, :mod:`nbserver.services.sessions.store`) and reads them back at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = ["CONNECTION_KEYS", "KernelRecord", "KernelRecords", "RecordKeeper", "connection_record"]

log = logging.getLogger("nbserver.kernel")

#: the connection-info fields a record keeps (what a client needs to talk to the kernel)
CONNECTION_KEYS = (
    "transport",
    "ip",
    "shell_port",
    "iopub_port",
    "stdin_port",
    "hb_port",
    "control_port",
    "key",
    "signature_scheme",
)


def connection_record(info: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`CONNECTION_KEYS` of a jupyter_client connection-info dict, JSON-safe (the
    ``key`` is bytes there and a string here)."""
    record = {}
    for name in CONNECTION_KEYS:
        if name in info:
            value = info[name]
            record[name] = value.decode() if isinstance(value, bytes) else value
    return record


@dataclass(frozen=True)
class KernelRecord:
    """One running kernel, as recorded.

    Attributes:
        kernel_id: the kernel's id (also its id in the API).
        name: its kernelspec name.
        connection: :func:`connection_record` of its connection info.
        pid: the kernel process, when the kernel is a local process (else None).
        cwd: the directory it was started in.
        env: the environment variables the server added to ``os.environ`` for it
            (``JPY_SESSION_NAME``); a restart starts the new process with them.
        interrupt_mode: the kernelspec's ``interrupt_mode`` (``signal`` or ``message``).
        last_activity: the kernel's last activity when the record was last written.
    """

    kernel_id: str
    name: str
    connection: dict[str, Any]
    pid: int | None
    cwd: str
    env: dict[str, str]
    interrupt_mode: str
    last_activity: datetime


class KernelRecords(Protocol):
    """Where a kernel manager keeps its records. Methods may do I/O but must not block the
    event loop for more than a trivial moment."""

    async def load(self) -> list[KernelRecord]:
        """Every record, oldest first."""

    async def save(self, record: KernelRecord) -> None:
        """Write ``record``, replacing the one with the same ``kernel_id``."""

    async def touch(self, activity: Mapping[str, datetime]) -> None:
        """Update ``last_activity`` of the given kernels (unknown ids are ignored)."""

    async def delete(self, kernel_id: str) -> None:
        """The server stopped the kernel: forget its record. (Sessions on it are dropped when
        next read, as for any kernel that is gone.)"""

    async def forget(self, kernel_id: str) -> None:
        """The kernel was found gone at start-up: forget its record and the sessions on it."""


class RecordKeeper:
    """How the kernel manager uses its :class:`KernelRecords` (or none: then every method does
    nothing). A failed write is logged, not raised: the kernel works without its record, it
    only will not outlive the server. ``last_activity`` is written only when it changed.
    """

    def __init__(self, records: KernelRecords | None) -> None:
        self.records = records
        self._written: dict[str, datetime] = {}  # last_activity as last written, by kernel id

    async def load(self) -> list[KernelRecord]:
        """Every record (none without records). Raises what the store raises."""
        return [] if self.records is None else await self.records.load()

    async def save(self, record: KernelRecord) -> None:
        if self.records is None:
            return
        try:
            await self.records.save(record)
        except Exception:
            log.exception("Recording kernel %s failed: it will not outlive the server", record.kernel_id)
        else:
            self._written[record.kernel_id] = record.last_activity

    def adopted(self, record: KernelRecord) -> None:
        """``record`` was just read back, and is what the store holds."""
        self._written[record.kernel_id] = record.last_activity

    async def touch(self, activity: Mapping[str, datetime]) -> None:
        """Write the ``last_activity`` values that differ from those last written."""
        changed = {k: v for k, v in activity.items() if self._written.get(k) != v}
        if self.records is None or not changed:
            return
        try:
            await self.records.touch(changed)
        except Exception:
            log.exception("Recording kernel activity failed")
        else:
            self._written.update(changed)

    async def delete(self, kernel_id: str) -> None:
        await self._drop(kernel_id, forget=False)

    async def forget(self, kernel_id: str) -> None:
        await self._drop(kernel_id, forget=True)

    async def _drop(self, kernel_id: str, forget: bool) -> None:
        self._written.pop(kernel_id, None)
        if self.records is None:
            return
        try:
            await (self.records.forget if forget else self.records.delete)(kernel_id)
        except Exception:
            log.exception("Deleting the record of kernel %s failed", kernel_id)

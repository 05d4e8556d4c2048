"""One helper for the background tasks every service runs (cullers, pollers, relays)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["cancel"]


async def cancel(task: asyncio.Future[Any] | None) -> None:
    """Cancel ``task`` (None: nothing) and wait until it has ended; its cancellation is not
    raised here (an exception it had already failed with is)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

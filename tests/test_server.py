"""``Server`` lifecycle: ``stop()`` is idempotent and quiet.

Bad inputs tried: ``stop()`` twice in a row, twice at once (``gather``), and a third time from
the test fixture's teardown; with a kernel running, so every service has work to shut down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from nbserver import Server
from tests.conftest import Client


def counted(
    name: str, shutdown: Callable[[], Awaitable[None]], calls: dict[str, int]
) -> Callable[[], Awaitable[None]]:
    async def wrapper() -> None:
        calls[name] += 1
        await shutdown()

    return wrapper


@pytest.mark.parametrize("together", [False, True], ids=["one-after-the-other", "at-once"])
async def test_stop_twice_shuts_down_once_and_logs_nothing(
    make_server: Callable[..., Awaitable[Server]],
    make_client: Callable[[Server], Client],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    together: bool,
) -> None:
    """A second ``stop()`` ran every service's shutdown again: the contents manager, whose
    worker threads were gone, failed with "Shutting down contents failed" and a traceback (the
    test fixtures stop every server at teardown, after tests that stopped it themselves)."""
    server = await make_server()
    client = make_client(server)
    assert (await client.post("api/kernels", json={})).status == 201
    assert server.ctx is not None
    calls: dict[str, int] = {}
    for name, service in server.ctx.services.items():
        shutdown = getattr(service, "shutdown", None)
        if shutdown is not None:
            calls[name] = 0
            monkeypatch.setattr(service, "shutdown", counted(name, shutdown, calls))
    assert {"contents", "kernels"} <= set(calls)
    caplog.set_level(logging.INFO, logger="nbserver")
    if together:
        await asyncio.gather(server.stop(), server.stop())
    else:
        await server.stop()
        await server.stop()
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not problems, [r.getMessage() for r in problems]
    assert calls == {name: 1 for name in calls}, calls

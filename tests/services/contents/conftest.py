"""Fixtures of the contents API tests: servers with either contents manager.

``manager_kind`` is ``"filesystem"`` (the default file manager on ``root_dir``) or ``"memory"``
(:class:`~tests.services.contents.memory.InMemoryContentsManager`, passed to the server as
``contents=``); tests that use ``api`` or ``start`` run once with each. A test that only makes
sense on a filesystem narrows it with ``@pytest.mark.parametrize("manager_kind", ["filesystem"])``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import tornado.ioloop

from nbserver import Server
from tests.conftest import Client
from tests.services.contents.memory import InMemoryContentsManager

Start = Callable[..., Awaitable[Client]]


@pytest.fixture(params=["filesystem", "memory"])
def manager_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start(
    manager_kind: str,
    make_server: Callable[..., Awaitable[Server]],
    make_client: Callable[[Server], Client],
) -> Start:
    """``await start(**config)``: a server with the parametrized contents manager, and a client.

    Deleting never uses the trash in tests (it would fill the real one)."""

    async def start(**config: Any) -> Client:
        config.setdefault("delete_to_trash", False)
        if manager_kind == "memory":
            config["contents"] = InMemoryContentsManager(
                allow_hidden=config.get("allow_hidden", False),
                always_delete_dir=config.get("always_delete_dir", False),
            )
        return make_client(await make_server(**config))

    return start


@pytest.fixture
def api(io_loop: tornado.ioloop.IOLoop, start: Start) -> Client:
    """A client of a server with the parametrized contents manager."""
    return io_loop.run_sync(start)


def seed(client: Client, path: str, data: bytes | None = b"") -> None:
    """Put a file (``None``: a directory) straight into storage, past every API rule."""
    assert client.server.ctx is not None
    manager = client.server.ctx.services["contents"]
    if isinstance(manager, InMemoryContentsManager):
        manager.seed(path, data)
        return
    target = Path(client.server.config.root_dir, path)
    if data is None:
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

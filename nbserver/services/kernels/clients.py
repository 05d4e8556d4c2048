"""Who gets a kernel's messages: the clients attached to it, and what is kept for those away.

Theory of operation
-------------------
Clients are identified by the ``session_id`` of their websocket URL; at most one client per
session is attached. iopub messages go to every attached client (:meth:`ClientTable.fan_out`);
a reply goes to the one session it answers (:meth:`ClientTable.deliver_to`).

When a client detaches (its websocket closed), messages meant for it are kept in a
:class:`ReplayBuffer` bounded in bytes and age; when a client with the same ``session_id``
attaches again, the buffer is replayed in order before live messages. Attach, replay and detach
are synchronous, so no message can slip between replay and live delivery.

Hand-over. A client that detaches may still have messages in flight: handed to its connection
but not known to have left (a stalled network). Which of them never left is known only once the
connection's writes settle, and they are older than anything the kernel sends meanwhile. Such a
client detaches with ``unsettled=True`` and promises ONE :meth:`ClientTable.requeue` (possibly
empty) once its writes have settled. Until then the session is *settling*: a client attaching
with that ``session_id`` is attached *held*, and what the kernel sends it waits in the buffer;
the requeue puts the unsent messages in front of the buffer, replays the whole to the held client
and makes it live. So a reconnecting client gets every message exactly once, in the kernel's
order. A promise not kept within :data:`SETTLE_TIMEOUT` seconds is given up on (logged) at the
next message for the session.

One client's failure is its own. A message a client's protocol cannot encode (the legacy JSON
framing parses the header; a kernel may send one that is not a JSON object) makes its
``deliver`` raise :class:`~nbserver.protocol.ProtocolError`: the table drops that message for
that client alone, with a warning, and goes on delivering it to the others.

Nothing here does I/O: clients are objects with ``deliver`` and ``kernel_stopped``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from ...protocol.errors import ProtocolError

__all__ = ["SETTLE_TIMEOUT", "Client", "ClientTable", "ReplayBuffer"]

log = logging.getLogger("nbserver.kernel")

SETTLE_TIMEOUT = 30.0  # seconds a held client waits at most for its predecessor's requeue


class Client(Protocol):
    """A websocket (or test) client attached to a kernel."""

    session_id: str

    def deliver(self, channel: str, parts: list[bytes]) -> None:
        """Queue a message for the client. Must not block; may drop (and say so) when the
        client cannot keep up."""

    def kernel_stopped(self) -> None:
        """The kernel is gone (shut down or dead for good): disconnect."""


class ReplayBuffer:
    """Messages kept for a disconnected client: at most ``max_bytes``, none older than
    ``max_age`` seconds (oldest dropped first; ``dropped`` counts them). ``settling`` is True
    while a requeue of the client's unsent messages is awaited (see the module docstring)."""

    def __init__(self, max_bytes: int, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        self.since = clock()
        self.size = 0
        self.dropped = 0
        self.settling = False
        self._items: deque[tuple[float, str, list[bytes], int]] = deque()

    def append(self, channel: str, parts: list[bytes]) -> None:
        now = self.clock()
        size = sum(len(p) for p in parts)
        self._items.append((now, channel, parts, size))
        self.size += size
        self._trim(now)

    def _trim(self, now: float) -> None:
        items = self._items
        while items and (self.size > self.max_bytes or now - items[0][0] > self.max_age):
            _, _, _, size = items.popleft()
            self.size -= size
            self.dropped += 1

    def prepend(self, items: Sequence[tuple[str, list[bytes]]]) -> None:
        """Put older messages in front, keeping their order."""
        now = self.clock()
        for channel, parts in reversed(items):
            size = sum(len(p) for p in parts)
            self._items.appendleft((now, channel, parts, size))
            self.size += size
        self._trim(now)

    def expired(self) -> bool:
        """True once the client has been gone longer than ``max_age``: forget it."""
        return self.clock() - self.since > self.max_age

    def drain(self) -> list[tuple[str, list[bytes]]]:
        self._trim(self.clock())
        items = [(channel, parts) for _, channel, parts, _ in self._items]
        self._items.clear()
        self.size = 0
        return items

    def __len__(self) -> int:
        return len(self._items)


class _Held:
    """Stands in the table for a client attached while its session is settling: what it is
    sent waits in ``buffer``, behind its predecessor's unsent messages."""

    def __init__(self, table: ClientTable, client: Client, buffer: ReplayBuffer) -> None:
        self.table = table
        self.client = client
        self.buffer = buffer
        self.session_id = client.session_id

    def deliver(self, channel: str, parts: list[bytes]) -> None:
        self.buffer.append(channel, parts)
        if self.buffer.clock() - self.buffer.since > SETTLE_TIMEOUT:
            log.warning("Session %s: its previous connection never settled; going on", self.session_id)
            self.table.requeue(self.session_id, [])

    def kernel_stopped(self) -> None:
        self.client.kernel_stopped()


class ClientTable:
    """The clients of one kernel, live and away.

    Args:
        replay_bytes, replay_seconds: bounds of each detached session's replay buffer.
        clock: the time source of the buffers (monotonic seconds).
    """

    def __init__(
        self, replay_bytes: int, replay_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._replay_bytes = replay_bytes
        self._replay_seconds = replay_seconds
        self._clock = clock
        #: attached clients by session (a held one is a stand-in whose ``client`` is the client)
        self.clients: dict[str, Client] = {}
        #: replay buffers of detached sessions
        self.buffers: dict[str, ReplayBuffer] = {}

    def get(self, session_id: str) -> Client | None:
        """The client attached with ``session_id`` (held or live), if any."""
        client = self.clients.get(session_id)
        return client.client if isinstance(client, _Held) else client

    def attach(self, client: Client) -> int:
        """Attach ``client``; replay what was kept for its session first. Returns the number of
        replayed messages (0 while the session settles: the replay comes with the requeue). A
        client already attached with the same session is replaced (and learns nothing of it:
        the caller closes it)."""
        session_id = client.session_id
        current = self.clients.get(session_id)
        buffer = current.buffer if isinstance(current, _Held) else self.buffers.pop(session_id, None)
        if buffer is not None and buffer.settling:
            self.clients[session_id] = _Held(self, client, buffer)
            return 0
        replayed = 0
        if buffer is not None:
            if buffer.dropped:
                log.warning(
                    "Replay for session %s lost %d old messages (limits: %d bytes, %.0f s)",
                    session_id,
                    buffer.dropped,
                    buffer.max_bytes,
                    buffer.max_age,
                )
            for channel, parts in buffer.drain():
                replayed += _hand(client, channel, parts)
        self.clients[session_id] = client
        return replayed

    def detach(self, client: Client, *, unsettled: bool = False, keep: bool = True) -> None:
        """The client's connection closed: keep its messages until it comes back (unless not
        ``keep``: the kernel is gone). ``unsettled``: it still has messages in flight and will
        :meth:`requeue` (see the module docstring). A client already replaced is ignored."""
        session_id = client.session_id
        current = self.clients.get(session_id)
        if isinstance(current, _Held) and current.client is client:
            del self.clients[session_id]  # left before its predecessor settled: keep waiting
            if keep:
                self.buffers[session_id] = current.buffer
            return
        if current is not client:
            return  # already replaced by a newer connection of the same session
        del self.clients[session_id]
        if keep:
            buffer = ReplayBuffer(self._replay_bytes, self._replay_seconds, self._clock)
            buffer.settling = unsettled
            self.buffers[session_id] = buffer

    def requeue(self, session_id: str, unsent: Sequence[tuple[str, list[bytes]]]) -> None:
        """Messages a detached client was handed but never received go back in front of its
        session's messages, oldest first; this settles the session (a held client gets the
        whole, in order, and is live from then on). A session that never announced itself
        unsettled and has a live client again gets them at once, out of order."""
        current = self.clients.get(session_id)
        if isinstance(current, _Held):
            current.buffer.prepend(unsent)
            current.buffer.settling = False
            del self.clients[session_id]
            self.buffers[session_id] = current.buffer
            self.attach(current.client)
            return
        buffer = self.buffers.get(session_id)
        if buffer is not None:
            buffer.prepend(unsent)
            buffer.settling = False
        elif current is not None:
            for channel, parts in unsent:
                _hand(current, channel, parts)

    def keep(self, session_id: str, channel: str, parts: list[bytes]) -> None:
        """Put a message in a detached session's replay buffer (if it has one)."""
        buffer = self.buffers.get(session_id)
        if buffer is not None:
            buffer.append(channel, parts)

    def deliver_to(self, session_id: str, channel: str, parts: list[bytes]) -> None:
        """A message for one session: to its client, or kept for it (nowhere if unknown)."""
        client = self.clients.get(session_id)
        if client is not None:
            _hand(client, channel, parts)
        elif session_id in self.buffers:
            self.buffers[session_id].append(channel, parts)

    def fan_out(self, channel: str, parts: list[bytes]) -> None:
        """A message for every client: the attached ones and those away (a buffer older than
        its age limit is forgotten instead)."""
        # the buffers as they were before delivery: a client found closing in deliver()
        # detaches and keeps this message in its new buffer itself; once is enough
        buffers = list(self.buffers.items())
        for attached in list(self.clients.values()):
            _hand(attached, channel, parts)
        for gone, buffer in buffers:
            if buffer.expired() and not buffer.settling:
                del self.buffers[gone]
            else:
                buffer.append(channel, parts)

    def stopped(self) -> None:
        """The kernel is gone: forget what was kept, tell the attached clients."""
        self.buffers.clear()
        for client in list(self.clients.values()):
            client.kernel_stopped()


def _hand(client: Client, channel: str, parts: list[bytes]) -> int:
    """``client.deliver(channel, parts)``: 1 when delivered, 0 when the client's protocol
    cannot encode the message (ProtocolError), which is then dropped for this client alone,
    with a warning."""
    try:
        client.deliver(channel, parts)
    except ProtocolError as exc:
        log.warning("Dropped a %s message for session %s: %s", channel, client.session_id, exc)
        return 0
    return 1

"""KernelChannels' fan-out and replay bookkeeping, without a kernel: messages are handed to
``_dispatch`` as the socket reader would (or to its ClientTable directly), and the clients are
the smallest real ones.

Hand-overs tried: a new connection attaching while the old one's unsent messages are not known
yet, with kernel output before and after it attached; nothing unsent; held clients leaving and
being replaced before the old one settles; a promise of a requeue never kept; a buffer past its
age limit while it settles."""

from __future__ import annotations

import errno

import pytest
import zmq

from nbserver.protocol.wire import new_message
from nbserver.services.kernels import channels as channels_module
from nbserver.services.kernels.channels import ChannelsState, KernelChannels
from nbserver.services.kernels.clients import SETTLE_TIMEOUT, ClientTable

INFO = {"ip": "127.0.0.1", "transport": "tcp", "key": "k", "signature_scheme": "hmac-sha256"}


class ClosingClient:
    """Does what the websocket handler does when its connection turned out to be closing:
    detach (which creates the session's replay buffer), then keep the message there."""

    def __init__(self, channels: KernelChannels, session_id: str) -> None:
        self.channels = channels
        self.session_id = session_id

    def deliver(self, channel: str, parts: list[bytes]) -> None:
        self.channels.detach(self)
        self.channels.keep(self.session_id, channel, parts)

    def kernel_stopped(self) -> None:
        pass


def test_a_client_that_detaches_while_a_message_is_delivered_keeps_it_once() -> None:
    channels = KernelChannels(INFO, context=None)  # type: ignore[arg-type]  # no sockets opened
    channels.attach(ClosingClient(channels, "s1"))
    _, parts = new_message("stream", {"name": "stdout", "text": "line\n"}, "kernel")
    channels._dispatch("iopub", [b"<IDS|MSG>", b"", *parts])
    assert [p for _, p in channels.buffers["s1"].drain()] == [parts]
    channels.attach(ClosingClient(channels, "s2"))
    channels.broadcast_status("restarting")  # the server's own status, fanned out the same way
    assert len(channels.buffers["s2"]) == 1
    assert len(channels.buffers["s1"]) == 1  # s1 was gone already: kept in its buffer


# -- hand-over from a connection with messages in flight (clients.ClientTable) ---------------------


class Recorder:
    """A live client that records what it is delivered."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.got: list[bytes] = []
        self.stopped = False

    def deliver(self, channel: str, parts: list[bytes]) -> None:
        self.got.append(parts[3])

    def kernel_stopped(self) -> None:
        self.stopped = True


def out(n: int) -> list[bytes]:
    """Message parts whose content is ``n`` (the recorders keep the content)."""
    return [b"{}", b"{}", b"{}", str(n).encode()]


def numbers(client: Recorder) -> list[int]:
    return [int(content) for content in client.got]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_new_connection_of_an_unsettled_session_gets_everything_in_order() -> None:
    """The old connection got 1, had 2 and 3 in flight (3 never left); meanwhile the kernel sent
    4 and 5, the new connection attached between them. The new one gets 3, 4, 5, then live 6:
    not 5 and 6 first, then 3 (the unsettled requeue used to go out after live output)."""
    table = ClientTable(1 << 20, 600)
    old = Recorder("s")
    table.attach(old)
    table.fan_out("iopub", out(1))
    table.detach(old, unsettled=True)
    table.fan_out("iopub", out(4))
    new = Recorder("s")
    assert table.attach(new) == 0  # held: nothing yet
    assert table.get("s") is new
    table.fan_out("iopub", out(5))
    table.deliver_to("s", "iopub", out(6))  # e.g. the websocket's own status nudge: in order too
    assert new.got == []
    table.requeue("s", [("iopub", out(3))])  # 2 left, 3 did not
    assert numbers(new) == [3, 4, 5, 6]
    table.fan_out("iopub", out(7))
    assert numbers(new) == [3, 4, 5, 6, 7]
    assert table.buffers == {} and table.clients == {"s": new}


def test_a_settled_session_with_nothing_unsent_hands_over_at_once() -> None:
    table = ClientTable(1 << 20, 600)
    old, new = Recorder("s"), Recorder("s")
    table.attach(old)
    table.detach(old, unsettled=True)
    table.fan_out("iopub", out(1))
    table.requeue("s", [])  # everything in flight had left
    table.fan_out("iopub", out(2))
    assert table.attach(new) == 2
    assert numbers(new) == [1, 2]


def test_a_held_client_that_leaves_and_a_third_that_replaces_it() -> None:
    """Held clients come and go before the old connection settles: the last one gets it all."""
    table = ClientTable(1 << 20, 600)
    old, second, third = Recorder("s"), Recorder("s"), Recorder("s")
    table.attach(old)
    table.detach(old, unsettled=True)
    table.attach(second)
    table.fan_out("iopub", out(2))
    table.detach(second)  # left while held: the buffer stays, still settling
    assert "s" in table.buffers and table.get("s") is None
    table.fan_out("iopub", out(3))
    table.attach(third)
    fourth = Recorder("s")
    table.attach(fourth)  # replaces the held third (its connection is closed by the caller)
    table.requeue("s", [("iopub", out(1))])
    assert numbers(fourth) == [1, 2, 3] and second.got == third.got == []


def test_a_promise_not_kept_is_given_up_after_the_settle_timeout() -> None:
    clock = Clock()
    table = ClientTable(1 << 20, 600, clock)
    old, new = Recorder("s"), Recorder("s")
    table.attach(old)
    table.detach(old, unsettled=True)
    table.attach(new)
    table.fan_out("iopub", out(1))
    assert new.got == []
    clock.now += SETTLE_TIMEOUT + 1
    table.fan_out("iopub", out(2))
    assert numbers(new) == [1, 2]
    assert table.clients == {"s": new}


def test_an_unsettled_buffer_outlives_its_age_limit_until_it_settles() -> None:
    clock = Clock()
    table = ClientTable(1 << 20, 10, clock)
    old = Recorder("s")
    table.attach(old)
    table.detach(old, unsettled=True)
    clock.now += 11
    table.fan_out("iopub", out(1))
    assert "s" in table.buffers  # not forgotten while a requeue is awaited
    table.requeue("s", [])
    clock.now += 11
    table.fan_out("iopub", out(2))
    assert "s" not in table.buffers


async def test_channels_that_fail_to_open_leave_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """The third of the four sockets cannot connect ("too many open files"): open() raises,
    and the two made before are closed and no longer read (they were left open)."""
    real = channels_module.endpoint

    def failing(info: dict[str, object], channel: str) -> str:
        if channel == "stdin":
            raise zmq.ZMQError(errno.EMFILE)
        return real(info, channel)

    monkeypatch.setattr(channels_module, "endpoint", failing)
    context = zmq.Context()
    info = {**INFO, "shell_port": 1, "control_port": 2, "stdin_port": 3, "iopub_port": 4}
    channels = KernelChannels(info, context=context)
    with pytest.raises(zmq.ZMQError):
        channels.open()
    assert channels.state is ChannelsState.CLOSED
    assert channels._sockets == {} and channels._monitor is None
    context.term()  # returns: no socket is left open in it

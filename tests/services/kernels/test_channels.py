"""KernelChannels' fan-out and replay bookkeeping, without a kernel: messages are handed to
``_dispatch`` as the socket reader would, and the clients are the smallest real ones."""

from __future__ import annotations

from nbserver.protocol.wire import new_message
from nbserver.services.kernels.channels import KernelChannels

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

"""One client's undeliverable message is its own: the kernel fan-out (ClientTable) goes on.

The clients encode with the real codecs, as the websocket handler does: the legacy JSON framing
parses a message's header and raises ProtocolError when it is not a JSON object; the v1 binary
framing passes the header's bytes through. Bad headers tried: a JSON array, a JSON string,
bytes that are not JSON, and a header nested deeper than Python's recursion limit; on the
fan-out (the legacy client first, so that others come after it), a reply for one session, a
replay on reconnect and a requeue of unsent messages.
"""

from __future__ import annotations

import pytest

from nbserver.protocol import legacy, v1
from nbserver.protocol.wire import new_message
from nbserver.services.kernels.clients import ClientTable

BAD_HEADERS = [b"[1, 2]", b'"a string"', b"not json{", b"[" * 100_000 + b"]" * 100_000]


class CodecClient:
    """A client that encodes what it is given as its websocket would, and keeps the frames."""

    def __init__(self, session_id: str, protocol: str) -> None:
        self.session_id = session_id
        self.protocol = protocol
        self.frames: list[bytes] = []

    def deliver(self, channel: str, parts: list[bytes]) -> None:
        if self.protocol == "v1":
            self.frames.append(v1.encode(channel, parts))
        else:
            self.frames.append(legacy.encode(channel, parts)[0])

    def kernel_stopped(self) -> None:
        pass


def good(text: str) -> list[bytes]:
    return new_message("stream", {"name": "stdout", "text": text}, "kernel")[1]


def bad(header: bytes) -> list[bytes]:
    return [header, b"{}", b"{}", b'{"name": "stdout", "text": "x"}']


def dropped_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Dropped a")]


@pytest.mark.parametrize("header", BAD_HEADERS, ids=["array", "string", "not-json", "too-deep"])
def test_a_bad_header_on_the_fan_out_starves_no_other_client(
    caplog: pytest.LogCaptureFixture, header: bytes
) -> None:
    """The legacy client's ProtocolError stopped the fan-out: the clients attached after it got
    neither that message nor (had the caller not caught it) anything else in the batch. Now the
    legacy clients drop it, each with a warning; the v1 client gets its bytes; all get the next."""
    table = ClientTable(1 << 20, 600)
    first, middle, last = CodecClient("a", "legacy"), CodecClient("b", "v1"), CodecClient("c", "legacy")
    for client in (first, middle, last):
        table.attach(client)
    table.fan_out("iopub", bad(header))
    table.fan_out("iopub", good("after\n"))
    assert len(first.frames) == 1 and len(last.frames) == 1  # the good one only
    assert b"after" in first.frames[0] and b"after" in last.frames[0]
    assert len(middle.frames) == 2 and header[:50] in middle.frames[0]
    warnings = dropped_warnings(caplog)
    assert len(warnings) == 2 and "session a" in warnings[0] and "session c" in warnings[1]
    assert all("not a JSON object" in w for w in warnings)


def test_a_bad_reply_for_one_session_is_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    table = ClientTable(1 << 20, 600)
    client = CodecClient("a", "legacy")
    table.attach(client)
    table.deliver_to("a", "shell", bad(b"[]"))  # raised out of deliver_to before
    table.deliver_to("a", "shell", good("reply\n"))
    assert len(client.frames) == 1 and b"reply" in client.frames[0]
    assert len(dropped_warnings(caplog)) == 1


def test_a_bad_message_kept_for_an_absent_client_does_not_stop_its_replay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Messages kept while a client was away are replayed when it attaches again: a bad one in
    the middle raised out of attach(), losing the rest of the replay and leaving the client
    unattached."""
    table = ClientTable(1 << 20, 600)
    old = CodecClient("a", "legacy")
    table.attach(old)
    table.detach(old)
    for parts in (good("one\n"), bad(b"[]"), good("two\n")):
        table.fan_out("iopub", parts)
    new = CodecClient("a", "legacy")
    assert table.attach(new) == 2
    assert [b"one" in f for f in new.frames] == [True, False] and b"two" in new.frames[1]
    assert table.get("a") is new
    assert len(dropped_warnings(caplog)) == 1


def test_a_bad_message_in_a_requeue_to_a_live_client_does_not_stop_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = ClientTable(1 << 20, 600)
    old, new = CodecClient("a", "legacy"), CodecClient("a", "legacy")
    table.attach(old)
    table.attach(new)  # replaces old, which then requeues what it never sent
    table.requeue("a", [("iopub", bad(b"[]")), ("iopub", good("unsent\n"))])
    assert len(new.frames) == 1 and b"unsent" in new.frames[0]
    assert len(dropped_warnings(caplog)) == 1

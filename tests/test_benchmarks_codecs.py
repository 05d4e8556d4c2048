"""The ``codecs`` benchmark workload measures codecs that really round-trip: each implementation's
frames decode to the original message under the benchmark's reference framing, and back.
No timings are asserted."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks.codecs import IMPLEMENTATIONS, CodecError, check, measure, messages, nbserver_codec


def test_messages_are_representative() -> None:
    by_name = {sample.name: sample for sample in messages()}
    assert list(by_name) == ["status", "exec_result", "png100k", "bufs1m"]
    assert len(by_name["png100k"].parts[3]) > 100_000  # the base64 PNG
    assert [len(b) for b in by_name["bufs1m"].parts[4:]] == [1024, 1024 * 1024]
    assert all(len(sample.parts) == 4 for name, sample in by_name.items() if name != "bufs1m")


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
def test_codec_round_trips(impl: str) -> None:
    try:
        codec = IMPLEMENTATIONS[impl]()
    except ImportError:
        pytest.skip(f"{impl} is not installed")
    check(codec)  # raises CodecError on any difference


def test_check_catches_a_codec_that_drops_a_buffer() -> None:
    good = nbserver_codec()

    def lossy_decode(frame: bytes) -> tuple[str, list[bytes]]:
        channel, parts = good.v1_decode(frame)
        return channel, list(parts[:5])

    with pytest.raises(CodecError, match="v1 decode of bufs1m: 5 parts, expected 6"):
        check(dataclasses.replace(good, v1_decode=lossy_decode))


def test_measure_names_every_operation() -> None:
    results = measure(nbserver_codec(), batch_s=0.0001, batches=1)
    expected = {
        f"codec_{framing}_{sample.name}_{direction}_mps"
        for sample in messages()
        for framing in ("v1", "legacy")
        for direction in ("encode", "decode")
    }
    assert set(results) == expected
    assert all(value > 0 for value in results.values())

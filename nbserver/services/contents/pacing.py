"""Long pure-Python work in a worker thread, paced so that the event loop keeps its turns.

Theory of operation. Parsing, validating and writing a 10 MB notebook is a few hundred ms of
Python, run in a worker thread so that the event loop is not blocked outright. But the two
threads share the GIL, and CPython hands it over only every ``sys.getswitchinterval()`` (5 ms)
to a thread that asks for it: each time the loop thread gives the GIL up for a system call (every
socket read and write, every ``epoll_wait``, every ZMQ frame received) it then waits up to 5 ms to
get it back while the worker computes. A request that takes a few dozen of those waits a few
hundred ms (the convoy effect), and one long C call (``json.loads`` of 10 MB) holds the GIL for
its whole length.

So the work is cut in short slices. The worker calls a :data:`Tick` between small units of work
(a cell, a list item); a :class:`Pacer` lets it go on for :data:`SLICE_S`, then parks the
worker until the loop has run the callbacks that were ready: the loop gets the GIL as soon as
the worker parks (a wait of at most one slice instead of a switch interval per system call),
runs its pending work without a competitor, and the worker resumes from a callback queued behind
that work. So the worker gets at most one slice per turn of the loop, and an idle loop runs
that callback at once: the work runs at full speed when nothing else is going on. A loop that is
closed, or that does not run the callback within :data:`WAIT_S` (a stopped loop), lets the
worker go on.

(Blocking the loop thread while the worker runs, so that the two strictly alternate, was tried
and measured worse: every turn of the loop then pays for waking the worker and for its slice.)

:func:`loads` is ``json.loads`` in slices: the outer objects and arrays (the notebook model, its
content, its cells) are walked here and each value below them is parsed by the standard
library's own C scanner, so the result is the same; anything unusual is handed to
``json.loads`` whole, whose result or error is then the answer.
"""

from __future__ import annotations

import asyncio
import json
import json.decoder
import re
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["SLICE_S", "WAIT_S", "Pacer", "Tick", "loads", "no_tick", "run_paced"]

T = TypeVar("T")

#: called between small units of work; may block the calling (worker) thread for a while
Tick = Callable[[], None]

SLICE_S = 0.002  # work done between two turns of the loop
WAIT_S = 0.05  # longest wait for the loop's turn
PACED_DEPTH = 3  # loads: containers walked here (model -> content -> cells)


def no_tick() -> None:
    """The :data:`Tick` of unpaced work (pure code, tests, small inputs)."""


class Pacer:
    """The :data:`Tick` of work in a worker thread that shares the GIL with ``loop``'s thread.

    Each call that comes ``slice_s`` (default :data:`SLICE_S`) or more after the last turn gives
    the loop its turn: it schedules a callback on ``loop`` and blocks until that callback has run
    (at most :data:`WAIT_S`), so whatever the loop had ready before has run too. Never call it
    on the loop's own thread (it would wait for itself).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, slice_s: float | None = None) -> None:
        self._loop = loop
        self._slice = SLICE_S if slice_s is None else slice_s
        self._since = time.perf_counter()
        self.turns = 0  # turns given to the loop (for tests and profiling)

    def __call__(self) -> None:
        if time.perf_counter() - self._since >= self._slice:
            self._give_turn()
            self._since = time.perf_counter()

    def _give_turn(self) -> None:
        turn = threading.Event()
        try:
            self._loop.call_soon_threadsafe(turn.set)
        except RuntimeError:  # the loop is closed: nobody to wait for
            return
        turn.wait(WAIT_S)
        self.turns += 1


async def run_paced(
    fn: Callable[[Tick], T], run: Callable[[Callable[[], T]], Awaitable[T]] | None = None
) -> T:
    """``fn(tick)`` in a worker thread, with a :class:`Pacer` of the running loop as ``tick``.
    ``run`` runs a blocking function in a thread (default: the loop's default executor); ``fn``'s
    result or exception (as ``run`` passes it on) is returned or raised."""
    loop = asyncio.get_running_loop()
    pacer = Pacer(loop)

    def job() -> T:
        return fn(pacer)

    return await (run(job) if run is not None else loop.run_in_executor(None, job))


# -- json.loads in slices ------------------------------------------------------------------------

_Scan = Callable[[str, int], tuple[Any, int]]

#: the decoder's own string parser (the C one when present; not in the type stubs)
_scanstring: Callable[[str, int], tuple[str, int]] = vars(json.decoder)["scanstring"]
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace, as json.decoder.WHITESPACE


class _Whole(Exception):
    """Not for the sliced walk: ``json.loads`` parses the document in one piece."""


def loads(raw: bytes, tick: Tick, *, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """``json.loads(raw, parse_constant=parse_constant)``, with ``tick`` called between the items
    of the outer objects and arrays (to a depth of :data:`PACED_DEPTH`).

    The same value, or the same exception, as ``json.loads``: the bytes are decoded as it decodes
    them and every value below the walked containers is parsed by the decoder's C scanner; a
    document that does not take the plain path (a syntax error, a value refused by
    ``parse_constant``, nesting too deep) is parsed again by ``json.loads``, whose verdict stands.
    """
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        scan: _Scan = vars(json.JSONDecoder(parse_constant=parse_constant))["scan_once"]
        value, end = _value(text, _skip(text, 0), PACED_DEPTH, scan, tick)
        if _skip(text, end) != len(text):
            raise _Whole
        return value
    except (_Whole, ValueError, StopIteration, RecursionError):
        pass
    return json.loads(raw, parse_constant=parse_constant)


def _skip(text: str, index: int) -> int:
    """The index after the JSON whitespace at ``index``."""
    match = _WHITESPACE.match(text, index)
    return match.end() if match else index


def _value(text: str, index: int, depth: int, scan: _Scan, tick: Tick) -> tuple[Any, int]:
    if depth > 0 and text.startswith("{", index):
        return _object(text, _skip(text, index + 1), depth - 1, scan, tick)
    if depth > 0 and text.startswith("[", index):
        return _array(text, _skip(text, index + 1), depth - 1, scan, tick)
    return scan(text, index)  # StopIteration: no value here


def _object(text: str, index: int, depth: int, scan: _Scan, tick: Tick) -> tuple[dict[str, Any], int]:
    """The members of an object whose ``{`` (and the whitespace after it) is before ``index``.
    Members are set in order, so a repeated key keeps its first place and its last value, as
    the C scanner does."""
    obj: dict[str, Any] = {}
    if text.startswith("}", index):
        return obj, index + 1
    while True:
        if not text.startswith('"', index):
            raise _Whole
        key, index = _scanstring(text, index + 1)
        index = _skip(text, index)
        if not text.startswith(":", index):
            raise _Whole
        obj[key], index = _value(text, _skip(text, index + 1), depth, scan, tick)
        tick()
        index = _skip(text, index)
        if text.startswith("}", index):
            return obj, index + 1
        if not text.startswith(",", index):
            raise _Whole
        index = _skip(text, index + 1)


def _array(text: str, index: int, depth: int, scan: _Scan, tick: Tick) -> tuple[list[Any], int]:
    """The items of an array whose ``[`` (and the whitespace after it) is before ``index``."""
    items: list[Any] = []
    if text.startswith("]", index):
        return items, index + 1
    while True:
        item, index = _value(text, index, depth, scan, tick)
        items.append(item)
        tick()
        index = _skip(text, index)
        if text.startswith("]", index):
            return items, index + 1
        if not text.startswith(",", index):
            raise _Whole
        index = _skip(text, index + 1)

"""The JSON text that nbformat writes, written fast and in pieces. Pure: values in, text out.

nbformat writes notebooks with ``json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False,
separators=(",", ": "))``; with ``indent`` the standard library uses its pure-Python encoder, one
call per node. :func:`dumps` writes the same text several times faster, and :func:`dump_bytes`
encodes it to UTF-8 piece by piece, calling a :data:`~.pacing.Tick` between the objects of every
array, so that no single step holds the GIL for long (property-tested against ``json.dumps``).

:func:`compact_bytes` is a response body (``nbserver.web.encode_json``) made the same way: the
outer objects and arrays piece by piece, each value below them by ``json.dumps`` (one C call for
a whole notebook model of 10 MB holds the GIL for a hundred milliseconds or more).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

from .pacing import Tick, no_tick

__all__ = ["PIECE_PARTS", "compact_bytes", "dump_bytes", "dumps"]

PIECE_PARTS = 4096  # strings joined and encoded at a time


def dumps(obj: Any) -> str:
    """``json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False, separators=(",", ": "))``,
    several times faster: the standard library writes indented JSON with its pure-Python encoder.

    Raises:
        TypeError: a key that is not a string, or a value JSON cannot hold.
    """
    parts: list[str] = []
    _write(obj, parts, no_tick)
    return "".join(parts)


def dump_bytes(obj: Any, tick: Tick = no_tick) -> bytes:
    """``(dumps(obj) + "\n").encode("utf-8")``, encoded in pieces as it is written, with
    ``tick`` called between the objects of every array (cells, outputs).

    Raises:
        TypeError: as :func:`dumps`. UnicodeEncodeError: a lone surrogate.
    """
    pieces: list[bytes] = []
    parts: list[str] = []

    def between_items() -> None:
        if len(parts) >= PIECE_PARTS:
            pieces.append("".join(parts).encode("utf-8"))
            parts.clear()
        tick()

    _write(obj, parts, between_items)
    parts.append("\n")
    pieces.append("".join(parts).encode("utf-8"))
    return b"".join(pieces)


def _write(obj: Any, parts: list[str], between_items: Callable[[], None]) -> None:
    """Append the text of :func:`dumps` to ``parts``; ``between_items`` is called after each
    object that is an item of an array."""
    append = parts.append
    float_repr = float.__repr__
    encode = encode_basestring

    def write(value: Any, newline: str) -> None:
        if isinstance(value, str):
            append(encode(value))
        elif isinstance(value, dict):
            if not value:
                append("{}")
                return
            inner = newline + " "
            first = True
            for key in sorted(value):
                if type(key) is not str:
                    raise TypeError(f"keys must be str, not {type(key).__name__}")
                append(("{" if first else ",") + inner + encode(key) + ": ")
                first = False
                write(value[key], inner)
            append(newline + "}")
        elif isinstance(value, (list, tuple)):
            if not value:
                append("[]")
                return
            inner = newline + " "
            try:  # a list of strings (lines), the most common list, in one go
                append("[" + inner + ("," + inner).join(map(encode, value)) + newline + "]")
                return
            except TypeError:  # an item that is not a string
                pass
            first = True
            for item in value:
                append(("[" if first else ",") + inner)
                first = False
                write(item, inner)
                if isinstance(item, dict):
                    between_items()
            append(newline + "]")
        elif value is None:
            append("null")
        elif value is True:
            append("true")
        elif value is False:
            append("false")
        elif isinstance(value, int):
            append(int.__repr__(value))
        elif isinstance(value, float):
            append(_float(value, float_repr))
        else:
            raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    write(obj, "\n")


def _float(value: float, float_repr: Callable[[float], str]) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float_repr(value)


# -- compact ---------------------------------------------------------------------------------------

_compact = functools.partial(json.dumps, separators=(",", ":"), check_circular=False)


def compact_bytes(value: Any, tick: Tick = no_tick, depth: int = 3) -> bytes:
    """``json.dumps(value, separators=(",", ":"), check_circular=False).encode("utf-8")`` (the
    response body ``nbserver.web.encode_json`` makes), byte for byte, with ``tick`` called
    between the items of the objects and arrays of the ``depth`` outer levels (a contents
    model, its notebook, its cells).

    Raises:
        TypeError, ValueError, RecursionError: as ``json.dumps``.
    """
    pieces: list[str] = []
    _compact_into(pieces, value, depth, tick)
    return "".join(pieces).encode("utf-8")


def _compact_into(pieces: list[str], value: Any, depth: int, tick: Tick) -> None:
    if depth <= 0 or not value or not isinstance(value, (dict, list)):
        pieces.append(_compact(value))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            pieces.append("," if i else "[")
            _compact_into(pieces, item, depth - 1, tick)
            tick()
        pieces.append("]")
    elif not all(type(key) is str for key in value):  # json.dumps's key conversions: in one go
        pieces.append(_compact(value))
    else:
        for i, (key, item) in enumerate(value.items()):
            pieces.append(("," if i else "{") + _compact(key) + ":")
            _compact_into(pieces, item, depth - 1, tick)
            tick()
        pieces.append("}")

"""Big notebooks take turns with the event loop (:mod:`nbserver.services.contents.pacing`).

A notebook PUT or GET of megabytes is parsed, checked, written and encoded in a worker thread
that gives the event loop its turn between cells, so the loop never waits long for the GIL; and
the paced work gives exactly what the unpaced work gives: ``pacing.loads`` is ``json.loads``
(value, key order, or the same exception), ``dump_bytes`` and ``compact_bytes`` are the bytes of
``json.dumps``, a paced save stores the bytes an unpaced one stores.

Bad or odd inputs tried for ``loads`` (each must give ``json.loads``'s own verdict): a trailing
comma in the cells, a missing colon, a missing comma, extra data after the document, an
unterminated string, a raw control character in a string, ``NaN`` (refused by the body parser,
read from a stored file), ``1e400`` (infinity), a repeated key (first place, last value), a
UTF-8 BOM, UTF-16 text, a lone surrogate escape, invalid UTF-8, an empty document, whitespace
only, a bare scalar, an empty model, nesting 100,000 deep.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbserver.services.contents import jsontext, notebooks, pacing
from nbserver.web import encode_json
from tests.conftest import Client
from tests.services.contents.test_api import put
from tests.services.contents.test_notebook_saves import stored
from tests.services.contents.test_notebooks import SETTINGS, json_values, valid_notebooks


def _reject(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def outcome(parse: Any, raw: bytes, **kw: Any) -> tuple[str, str]:
    """What parsing gives, comparable: the value as JSON text (key order kept), or the error."""
    try:
        value = parse(raw, **kw)
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return "value", json.dumps(value)


def paced_loads(raw: bytes, **kw: Any) -> Any:
    return pacing.loads(raw, pacing.no_tick, **kw)


# -- loads ---------------------------------------------------------------------------------------


@SETTINGS
@given(json_values, st.sampled_from([None, 0, 1, 2]), st.booleans())
def test_loads_is_json_loads(value: Any, indent: int | None, ascii: bool) -> None:
    model = {"type": "notebook", "content": {"cells": [value, {"x": value}], "metadata": value}, "n": value}
    for doc in (model, value, [value, model]):
        raw = json.dumps(doc, indent=indent, ensure_ascii=ascii).encode()
        assert outcome(paced_loads, raw) == outcome(json.loads, raw)
        assert outcome(paced_loads, raw, parse_constant=_reject) == outcome(
            json.loads, raw, parse_constant=_reject
        )


ODD = {
    "trailing comma": b'{"content": {"cells": [{"a": 1},]}}',
    "missing colon": b'{"content" {"cells": []}}',
    "missing comma": b'{"content": {"cells": [1 2]}}',
    "extra data": b'{"content": {}} {}',
    "unterminated string": b'{"content": {"cells": ["abc',
    "control character": b'{"content": {"cells": ["a\x01b"]}}',
    "NaN": b'{"content": {"cells": [NaN, -Infinity]}}',
    "1e400": b'{"content": {"cells": [1e400]}}',
    "repeated key": b'{"a": 1, "b": {"c": [1]}, "a": {"z": 3}}',
    "UTF-8 BOM": b'\xef\xbb\xbf{"content": {"cells": []}}',
    "UTF-16": '{"content": {"cells": ["\u00e9"]}}'.encode("utf-16"),
    "lone surrogate": b'{"content": {"cells": ["\\ud800"]}}',
    "invalid UTF-8": b'{"content": {"cells": ["\xff"]}}',
    "empty": b"",
    "whitespace": b" \n\t ",
    "bare scalar": b' "x" ',
    "empty model": b"{}",
    "deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("case", list(ODD))
def test_loads_odd_and_bad_documents_as_json_loads(case: str) -> None:
    raw = ODD[case]
    assert outcome(paced_loads, raw) == outcome(json.loads, raw)
    assert outcome(paced_loads, raw, parse_constant=_reject) == outcome(
        json.loads, raw, parse_constant=_reject
    )


def test_loads_ticks_between_cells() -> None:
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1

    cells = [{"cell_type": "raw", "source": "x" * i, "metadata": {}} for i in range(50)]
    raw = json.dumps({"type": "notebook", "content": {"cells": cells}}).encode()
    assert pacing.loads(raw, tick) == json.loads(raw)
    assert ticks >= 50


# -- writing in pieces ---------------------------------------------------------------------------


@SETTINGS
@given(json_values)
def test_dump_bytes_and_compact_bytes_are_json_dumps(value: Any) -> None:
    for doc in (value, {"content": {"cells": [value, [value]]}}):
        assert jsontext.dump_bytes(doc) == (notebooks.dumps(doc) + "\n").encode()
        assert jsontext.compact_bytes(doc) == encode_json(doc)


@SETTINGS
@given(valid_notebooks())
def test_a_paced_save_stores_what_an_unpaced_one_stores(nb: dict[str, Any]) -> None:
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1

    paced = notebooks.prepare_save(copy.deepcopy(nb), tick)
    assert paced[:3] == notebooks.prepare_save(copy.deepcopy(nb))[:3]
    assert ticks >= len(nb["cells"]) * 3  # structure, as_v4, validation, split, writing...


# -- the Pacer -----------------------------------------------------------------------------------


async def test_a_pacer_gives_the_loop_its_turn() -> None:
    """Each tick of a spent slice returns only once the loop has run what it had ready: here a
    callback scheduled just before, every time."""
    loop = asyncio.get_running_loop()
    pacer = pacing.Pacer(loop, slice_s=0.0)
    ran: list[int] = []
    seen: list[bool] = []

    def work() -> None:
        for i in range(20):
            loop.call_soon_threadsafe(ran.append, i)
            pacer()
            seen.append(i in ran)

    await loop.run_in_executor(None, work)
    assert seen == [True] * 20 and pacer.turns == 20


def test_a_pacer_of_a_closed_loop_does_not_wait() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    pacer = pacing.Pacer(loop, slice_s=0.0)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (pacer(), pacer(), done.set()))
    thread.start()
    thread.join(10)
    assert done.is_set() and pacer.turns == 0


# -- over HTTP -----------------------------------------------------------------------------------


def big_notebook(cells: int) -> dict[str, Any]:
    """``cells`` code cells with a stream and a display_data output each (~1 KB a cell)."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": [
            {
                "cell_type": "code",
                "id": f"cell-{i}",
                "metadata": {},
                "execution_count": i,
                "source": f"for j in range({i}):\n    print(j)\n" + "# " + "x" * 400,
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": "0\n1\n2\n" * 20},
                    {
                        "output_type": "display_data",
                        "data": {"text/plain": f"<Figure {i}>", "image/png": "iVBORw0KGgo" * 30},
                        "metadata": {},
                    },
                ],
            }
            for i in range(cells)
        ],
    }


async def test_a_big_notebook_put_and_get_take_turns_with_the_loop(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PUT of a notebook of 400 cells (~600 KB) is processed in a thread that gives the loop
    its turn between cells (every cell here: the slice is set to 0): a ``GET /api/status`` sent
    at the first turn is answered before the PUT is, and what is stored is what an unpaced save
    stores. The GET of it (read and encoded) takes turns too."""
    monkeypatch.setattr(pacing, "SLICE_S", 0.0)
    loop = asyncio.get_running_loop()
    turns = 0
    answered: list[str] = []
    status: list[asyncio.Task[None]] = []
    give_turn = pacing.Pacer._give_turn

    async def ask_status() -> None:
        assert (await api.get("api/status")).status == 200
        answered.append("status")

    def counting_turn(pacer: pacing.Pacer) -> None:
        nonlocal turns
        turns += 1
        if turns == 1:  # in the worker thread: the loop is to serve a request meanwhile
            loop.call_soon_threadsafe(lambda: status.append(asyncio.ensure_future(ask_status())))
        give_turn(pacer)

    monkeypatch.setattr(pacing.Pacer, "_give_turn", counting_turn)
    nb = big_notebook(400)
    r = await put(api, "big.ipynb", {"type": "notebook", "content": copy.deepcopy(nb)})
    answered.append("put")
    assert r.status == 201, r.body
    assert status and (await asyncio.wait_for(status[0], 30)) is None
    assert answered == ["status", "put"]
    assert turns >= 400
    assert stored(api, "big.ipynb") == notebooks.prepare_save(copy.deepcopy(nb))[0]

    put_turns = turns
    r = await api.get("api/contents/big.ipynb")
    assert r.status == 200 and r.json["content"]["cells"][399]["id"] == "cell-399"
    assert turns >= put_turns + 400

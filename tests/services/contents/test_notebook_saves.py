"""Which notebooks a PUT stores, over real HTTP against both contents managers, and the rule
behind it (:func:`nbserver.services.contents.notebooks.structure_problem`) against nbformat.

A notebook that breaks nbformat's schema is still stored, with a validation ``message`` (never
lose a user's work); one whose skeleton nbformat cannot walk, or whose cells have no usable kind
or text, is refused with 400 ``"bad notebook"`` and a message naming the first problem, and
nothing is written: a new file is not created, an existing one keeps its bytes.

Bad inputs tried (refused): content that is not an object; ``nbformat`` missing, a string, a
float, a boolean, 5; ``metadata`` missing or an array; ``cells`` missing, a string, an object;
cells that are numbers or null; a cell without ``cell_type`` or with a numeric one, without
``metadata`` or with an array, with an array as ``id``; ``source`` a number, null, an array of
numbers; ``attachments`` an array; ``outputs`` a string or holding numbers; an output without
``output_type`` or with an array there, its ``data`` an array, its ``text`` a number; a v3
notebook without worksheets. (Stored with a message): a code cell without ``outputs``, a cell
without ``source``, an unknown ``cell_type``, an unknown top-level key, a string
``nbformat_minor``; (stored as valid): unknown metadata, a v3 notebook.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings

from nbserver.services.contents import notebooks
from tests.conftest import Client
from tests.services.contents.conftest import seed
from tests.services.contents.memory import InMemoryContentsManager
from tests.services.contents.test_notebooks import mutated_notebooks


def nb(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return {**base, **changes}


def cell(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"cell_type": "markdown", "id": "c1", "metadata": {}, "source": "# Hi"}
    return {k: v for k, v in {**base, **changes}.items() if v is not ...}


def code(**changes: Any) -> dict[str, Any]:
    return cell(**{"cell_type": "code", "execution_count": None, "outputs": [], **changes})


REFUSED: dict[str, tuple[Any, str]] = {
    "content is an array": ([1, 2], "a notebook is a JSON object, not an array"),
    "content is a string": ("x", "a notebook is a JSON object, not the string"),
    "nbformat missing": (
        {"cells": [], "metadata": {}},
        "nbformat (the format's major version, 4) is missing",
    ),
    "nbformat is a string": (nb(nbformat="4"), "nbformat must be an integer, not the string '4'"),
    "nbformat is a float": (nb(nbformat=4.0), "nbformat must be an integer, not the number 4.0"),
    "nbformat is a boolean": (nb(nbformat=True), "nbformat must be an integer, not a boolean"),
    "unknown major nbformat": (nb(nbformat=5), "nbformat 5 is not a version this server reads"),
    "metadata missing": ({"cells": [], "nbformat": 4, "nbformat_minor": 5}, "metadata is missing"),
    "metadata is an array": (nb(metadata=[]), "metadata must be an object, not an array"),
    "cells missing": ({"metadata": {}, "nbformat": 4, "nbformat_minor": 5}, "cells is missing"),
    "cells is a string": (nb(cells="abc"), "cells must be an array, not the string 'abc'"),
    "cells is an object": (nb(cells={}), "cells must be an array, not an object"),
    "a cell is a number": (nb(cells=[cell(), 3]), "cells[1] must be an object, not the number 3"),
    "a cell is null": (nb(cells=[None]), "cells[0] must be an object, not null"),
    "a cell without cell_type": (nb(cells=[cell(cell_type=...)]), "cells[0] has no cell_type"),
    "cell_type is a number": (nb(cells=[cell(cell_type=3)]), "cells[0].cell_type must be a string"),
    "a cell without metadata": (nb(cells=[cell(metadata=...)]), "cells[0] has no metadata"),
    "cell metadata is an array": (nb(cells=[cell(metadata=[])]), "cells[0].metadata must be an object"),
    "a cell id is an array": (nb(cells=[cell(id=["a"])]), "cells[0].id must be a string, not an array"),
    "source is a number": (
        nb(cells=[cell(source=5)]),
        "cells[0].source must be a string or an array of strings",
    ),
    "source is null": (nb(cells=[cell(source=None)]), "cells[0].source must be a string or an array"),
    "source holds numbers": (nb(cells=[cell(source=[1, 2])]), "cells[0].source must be a string or an array"),
    "attachments is an array": (nb(cells=[cell(attachments=[])]), "cells[0].attachments must be an object"),
    "outputs is a string": (nb(cells=[code(outputs="x")]), "cells[0].outputs must be an array"),
    "an output is a number": (nb(cells=[code(outputs=[1])]), "cells[0].outputs[0] must be an object"),
    "an output without output_type": (
        nb(cells=[code(outputs=[{"text": "x"}])]),
        "cells[0].outputs[0].output_type must be a string, not null",
    ),
    "output_type is an array": (
        nb(cells=[code(outputs=[{"output_type": ["stream"], "name": "stdout", "text": ""}])]),
        "cells[0].outputs[0].output_type must be a string, not an array",
    ),
    "output data is an array": (
        nb(cells=[code(outputs=[{"output_type": "display_data", "data": [], "metadata": {}}])]),
        "cells[0].outputs[0].data must be an object",
    ),
    "output text is a number": (
        nb(cells=[code(outputs=[{"output_type": "stream", "name": "stdout", "text": 5}])]),
        "cells[0].outputs[0].text must be a string or an array of strings",
    ),
    "v3 without worksheets": (
        {"nbformat": 3, "nbformat_minor": 0, "metadata": {}},
        "nbformat 3 cannot be upgraded to 4",
    ),
}

STORED: dict[str, tuple[Any, bool]] = {  # content, stored with a validation message
    "a code cell without outputs": (nb(cells=[code(outputs=...)]), True),
    "a cell without source": (nb(cells=[cell(source=...)]), True),
    "an unknown cell_type": (nb(cells=[cell(cell_type="future")]), True),
    "an unknown top-level key": (nb(extra=1), True),
    "a string nbformat_minor": (nb(nbformat_minor="5"), True),
    "unknown metadata": (nb(metadata={"my-extension": {"x": 1}}), False),
    "a v3 notebook": ({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}, False),
}


def stored(client: Client, path: str) -> bytes | None:
    """The bytes at ``path`` in the server's storage, past every API rule."""
    assert client.server.ctx is not None
    manager = client.server.ctx.services["contents"]
    if isinstance(manager, InMemoryContentsManager):
        file = manager.files.get(path)
        return None if file is None else file.data
    target = Path(client.server.config.root_dir, path)
    return target.read_bytes() if target.exists() else None


async def put_notebook(api: Client, path: str, content: Any) -> Any:
    return await api.request("PUT", f"api/contents/{path}", json={"type": "notebook", "content": content})


@pytest.mark.parametrize("case", list(REFUSED))
async def test_unusable_notebooks_are_400_and_nothing_is_written(api: Client, case: str) -> None:
    content, problem = REFUSED[case]
    r = await put_notebook(api, "new.ipynb", copy.deepcopy(content))
    assert r.status == 400 and r.json["reason"] == "bad notebook", (r.status, r.body)
    assert problem in r.json["message"], r.json["message"]
    assert stored(api, "new.ipynb") is None
    assert (await api.get("api/contents/new.ipynb")).status == 404
    old = json.dumps(nb(cells=[cell()])).encode()
    seed(api, "old.ipynb", old)
    r = await put_notebook(api, "old.ipynb", copy.deepcopy(content))
    assert r.status == 400 and problem in r.json["message"]
    assert stored(api, "old.ipynb") == old


@pytest.mark.parametrize("case", list(STORED))
async def test_invalid_but_readable_notebooks_are_stored(api: Client, case: str) -> None:
    content, with_message = STORED[case]
    r = await put_notebook(api, "n.ipynb", copy.deepcopy(content))
    assert r.status == 201, r.body
    assert ("message" in r.json) == with_message, r.json
    assert stored(api, "n.ipynb") is not None
    assert (await api.get("api/contents/n.ipynb")).status == 200


def test_the_first_problem_is_named() -> None:
    bad = nb(metadata=[], cells=[cell(cell_type=...), cell(source=1)])
    assert notebooks.structure_problem(bad) == "metadata must be an object, not an array"
    bad["metadata"] = {}
    assert notebooks.structure_problem(bad) == "cells[0] has no cell_type"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_notebooks())
def test_what_is_stored_nbformat_reads_back(content: dict[str, Any]) -> None:
    """Whatever one change does to a valid notebook, what ``prepare_save`` stores is read back
    by ``nbformat.reads`` (as jupyter_server reads it), unless it is refused. The one exception
    kept on purpose: a non-integer ``nbformat_minor`` (nbformat's validator asserts on it; the
    notebook is stored with a message, see docs/compatibility.md)."""
    try:
        data = notebooks.prepare_save(copy.deepcopy(content))[0]
    except notebooks.NotANotebook:
        return
    if type(content.get("nbformat_minor")) is not int:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nbformat.reads(data.decode(), as_version=4)  # raises if unreadable

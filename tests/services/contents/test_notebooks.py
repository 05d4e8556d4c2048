"""The fast notebook codec against nbformat, property by property: what it writes, what it reads,
what it calls valid and how it signs must be what nbformat (and so jupyter_server) does."""

from __future__ import annotations

import copy
import io
import json
import warnings
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbformat.sign import MemorySignatureStore, NotebookNotary

from nbserver.services.contents import notebooks

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies --------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
texts = st.text(alphabet=st.sampled_from('ab \n\r\t\u00e9\u4e2d"\\<>'), max_size=30)
metadata = st.fixed_dictionaries(
    {},
    optional={
        "tags": st.lists(st.text(alphabet="ab-_", min_size=1, max_size=4), max_size=2, unique=True),
        "collapsed": st.booleans(),
        "x-custom": json_values,
    },
)
bundle = st.fixed_dictionaries(
    {"text/plain": texts},
    optional={
        "text/html": texts,
        "image/png": st.just("iVBORw0KGgo="),
        "image/svg+xml": texts,
        "application/json": st.dictionaries(st.text(max_size=3), json_values, max_size=2),
    },
)
outputs = st.one_of(
    st.builds(
        lambda name, text: {"output_type": "stream", "name": name, "text": text},
        st.sampled_from(["stdout", "stderr"]),
        texts,
    ),
    st.builds(
        lambda data, md: {"output_type": "display_data", "data": data, "metadata": md}, bundle, metadata
    ),
    st.builds(
        lambda data, n: {"output_type": "execute_result", "data": data, "metadata": {}, "execution_count": n},
        bundle,
        st.none() | st.integers(0, 99),
    ),
    st.builds(
        lambda e, v, tb: {"output_type": "error", "ename": e, "evalue": v, "traceback": tb},
        texts,
        texts,
        st.lists(texts, max_size=3),
    ),
)


def _cell(kind: str, source: str, md: dict[str, Any], outs: list[Any], count: int | None) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "metadata": md, "source": source}
    if kind == "code":
        cell.update(outputs=outs, execution_count=count)
    return cell


cells = st.builds(
    _cell,
    st.sampled_from(["code", "markdown", "raw"]),
    texts,
    metadata,
    st.lists(outputs, max_size=3),
    st.none() | st.integers(0, 99),
)


@st.composite
def valid_notebooks(draw: st.DrawFn) -> dict[str, Any]:
    minor = draw(st.integers(0, 5))
    drawn = draw(st.lists(cells, max_size=5))
    for i, cell in enumerate(drawn):
        if minor >= 5:
            cell["id"] = f"cell-{i}"
    nb_metadata = draw(
        st.fixed_dictionaries(
            {}, optional={"kernelspec": st.just({"name": "python3", "display_name": "Python 3"})}
        )
    )
    return {"nbformat": 4, "nbformat_minor": minor, "metadata": nb_metadata, "cells": drawn}


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found += _paths(value, (*prefix, i))
    return found


@st.composite
def mutated_notebooks(draw: st.DrawFn) -> dict[str, Any]:
    """A valid notebook with one thing changed somewhere: a key removed, a value replaced by
    any JSON value, or an unknown key added."""
    nb = draw(valid_notebooks())
    path = draw(st.sampled_from(_paths(nb)))
    parent: Any = nb
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["delete", "replace", "add"]))
    if not path:
        nb["bogus"] = 1
    elif action == "delete":
        del parent[path[-1]]
    elif action == "replace":
        parent[path[-1]] = draw(json_values | st.sampled_from(["code", "stream", "display_data", 4, 5]))
    else:
        target = parent[path[-1]]
        if isinstance(target, dict):
            target[draw(st.sampled_from(["bogus", "id", "name", "data", "text/plain"]))] = draw(json_values)
        else:
            parent[path[-1]] = None
    return nb


def nbformat_says_valid(nb: dict[str, Any]) -> bool:
    """The oracle: what ``nbformat.validate`` (jupyter_server's check) says."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            nbformat.validate(copy.deepcopy(nb))
        except Exception:  # ValidationError; an AssertionError for a non-integer version
            return False
    return True


# -- writing -------------------------------------------------------------------------------------


@SETTINGS
@given(json_values)
def test_dumps_is_json_dumps_with_nbformat_options(value: Any) -> None:
    expected = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False, separators=(",", ": "))
    assert notebooks.dumps(value) == expected


@SETTINGS
@given(valid_notebooks())
def test_prepare_save_writes_what_nbformat_writes(nb: dict[str, Any]) -> None:
    reference = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nbformat.write(nbformat.from_dict(copy.deepcopy(nb)), reference, version=nbformat.NO_CONVERT)
    data, message, _, _ = notebooks.prepare_save(copy.deepcopy(nb))
    assert message is None
    assert data.decode("utf-8") == reference.getvalue()


@SETTINGS
@given(valid_notebooks())
def test_load_reads_what_nbformat_reads(nb: dict[str, Any]) -> None:
    stored = notebooks.prepare_save(copy.deepcopy(nb))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = nbformat.reads(stored.decode("utf-8"), as_version=4)
    assert notebooks.load(stored) == json.loads(json.dumps(expected))


def test_dumps_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError):
        notebooks.dumps({1: "x"})
    with pytest.raises(TypeError):
        notebooks.dumps({"x": object()})


@pytest.mark.parametrize(
    "content",
    [
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {},
            "cells": [{"cell_type": "raw", "source": "\ud800"}],
        },
        {"nbformat": 4, "nbformat_minor": 5, "metadata": {"deep": [[[[]]]]}, "cells": []},
    ],
    ids=["lone surrogate", "nested"],
)
def test_prepare_save_bad_or_odd_content(content: dict[str, Any]) -> None:
    """Bad input: a lone surrogate cannot be stored as UTF-8 (NotANotebook, not a crash); odd
    but fine input (nested metadata) is stored."""
    if content["metadata"]:
        assert json.loads(notebooks.prepare_save(content)[0])["metadata"] == {"deep": [[[[]]]]}
    else:
        with pytest.raises(notebooks.NotANotebook):
            notebooks.prepare_save(content)


def test_deeply_nested_content_is_not_a_notebook() -> None:
    """Bad input: metadata nested 5,000 deep (a RecursionError in any recursive walk)."""
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(notebooks.NotANotebook):
        notebooks.prepare_save({"nbformat": 4, "nbformat_minor": 5, "metadata": {"x": deep}, "cells": []})


# -- validation ----------------------------------------------------------------------------------


@SETTINGS
@given(valid_notebooks())
def test_valid_notebooks_take_the_fast_path(nb: dict[str, Any]) -> None:
    assert nbformat_says_valid(nb)
    assert notebooks._valid_fast(nb)
    assert notebooks.validation_message(nb) is None


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_notebooks())
def test_validation_agrees_with_nbformat(nb: dict[str, Any]) -> None:
    """Whatever one change does to a notebook, the fast path never calls valid what nbformat
    calls invalid, and the verdict reported is nbformat's."""
    valid = nbformat_says_valid(nb)
    if notebooks._valid_fast(copy.deepcopy(nb)):
        assert valid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        message = notebooks.validation_message(copy.deepcopy(nb))
    assert (message is None) == valid


def test_invalid_notebook_message_is_nbformats() -> None:
    nb = {
        "nbformat": 4,
        "nbformat_minor": 4,
        "metadata": {},
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": "x", "bogus": 1}],
    }
    message = notebooks.validation_message(nb)
    assert message is not None and message.startswith("Notebook validation failed: ") and "bogus" in message


def test_duplicate_ids_go_to_nbformat() -> None:
    """Duplicate cell ids: nbformat repairs them (and warns); the fast path lets it."""
    cell = {"cell_type": "markdown", "id": "same", "metadata": {}, "source": ""}
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [dict(cell), dict(cell)]}
    assert not notebooks._valid_fast(nb)


# -- trust ---------------------------------------------------------------------------------------


@SETTINGS
@given(valid_notebooks(), st.binary(min_size=1, max_size=64))
def test_signature_is_nbformats(nb: dict[str, Any], secret: bytes) -> None:
    loaded = notebooks.load(notebooks.prepare_save(copy.deepcopy(nb))[0])
    with NotebookNotary(store_factory=MemorySignatureStore, secret=secret) as notary:
        expected = notary.compute_signature(nbformat.from_dict(copy.deepcopy(loaded)))
    assert notebooks.signature(loaded, secret) == expected


def test_signature_ignores_a_stored_signature_and_split_lines() -> None:
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": "one\ntwo"}],
    }
    split = copy.deepcopy(nb)
    split["cells"][0]["source"] = ["one\n", "two"]
    split["metadata"]["signature"] = "sha256:old"
    assert notebooks.signature(nb, b"k") == notebooks.signature(split, b"k")
    assert split["metadata"]["signature"] == "sha256:old"


def test_check_cells_and_mark_cells() -> None:
    html = {"output_type": "display_data", "data": {"text/html": "<b>"}, "metadata": {}}
    text = {"output_type": "stream", "name": "stdout", "text": "hi"}
    code = {"cell_type": "code", "metadata": {}, "outputs": [text], "execution_count": None, "source": ""}
    nb: dict[str, Any] = {"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": [code]}
    assert notebooks.check_cells(nb)  # only safe output: trusted without a mark
    code["outputs"] = [html]
    assert not notebooks.check_cells(nb)  # rich output, no mark
    code["metadata"]["trusted"] = True
    assert notebooks.check_cells(nb) and code["metadata"] == {}  # the mark is consumed
    notebooks.mark_cells(nb, False)
    assert code["metadata"] == {"trusted": False}


def test_exclusive_one_of_is_compiled_as_a_type_list() -> None:
    """nbformat's ``multiline_string`` (a string or an array of strings) becomes one type list
    (fastjsonschema then raises no exception for the branch that does not match); a ``oneOf``
    whose branches can overlap (``integer``/``number``) or carry other keywords stays as it is.
    Bad inputs that must stay invalid on the fast path: a source that is an array of numbers, a
    number, an object."""
    multiline = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    assert notebooks._exclusive_types({"x": multiline}) == {
        "x": {"type": ["string", "array"], "items": {"type": "string"}}
    }
    for kept in (
        {"oneOf": [{"type": "integer"}, {"type": "number"}]},
        {"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 3}]},
        {"oneOf": [{"type": "string", "pattern": "a"}, {"type": "array"}]},
        {"type": "string", "oneOf": [{"type": "string"}, {"type": "array"}]},
    ):
        assert notebooks._exclusive_types(kept) == kept
    cell = {"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["one\n", "two"]}
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]}
    assert notebooks._valid_fast(nb)
    for source in ([1, 2], 3, {"a": "b"}):
        cell["source"] = source
        assert not notebooks._valid_fast(nb) and not nbformat_says_valid(nb)

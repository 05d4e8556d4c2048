"""Notebook files: read, validate, write and sign them, fast. Pure: bytes and dicts in and out.

nbformat's reader and writer are correct and slow on big notebooks: they convert every node into a
``NotebookNode``, validate against a schema whose ``oneOf`` tries each cell and output type in turn
(raising and discarding an exception per miss), deep-copy the notebook, and serialize it with
``indent=1``, which turns off the C JSON encoder. This module does the same work on plain dicts:

- **validation** dispatches each cell on ``cell_type`` and each output on ``output_type`` to the
  matching definition of nbformat's own schema files, compiled with fastjsonschema (as nbformat
  does). The types of a ``oneOf`` are mutually exclusive ``enum``s, so the verdict is the same.
  A ``oneOf`` whose branches differ by JSON type alone (``multiline_string``: a string or an
  array of strings) is compiled as one ``type`` list, which fastjsonschema checks without
  raising an exception for the branch that does not match (:func:`_exclusive_types`).
  Anything unusual (another major or an unknown minor version, an unknown type, duplicate cell
  ids) or any failure goes to ``nbformat.validate``, whose message is the one reported.
- **writing** produces byte for byte what ``nbformat.writes`` produces (:mod:`.jsontext`,
  property-tested).
- **pacing**: the functions that walk every cell take a :data:`~.pacing.Tick`, called between
  cells (and list items), so that a worker thread doing this work gives the event loop its turn
  (:mod:`.pacing`); the default does nothing.
- **signing** computes nbformat's trust signature, an HMAC over every key and value in key order,
  over joined pieces instead of one ``update`` per string (tested against ``NotebookNotary``).
- **structure**: a notebook that breaks the schema is still saved, with a validation message
  (never lose a user's work), but one whose skeleton nbformat cannot walk is refused
  (:func:`structure_problem`): it could never be read back.
"""

from __future__ import annotations

import hmac
import importlib.util
import json
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from . import pacing
from .jsontext import PIECE_PARTS, dump_bytes, dumps
from .pacing import Tick, no_tick

__all__ = [
    "check_cells",
    "dump_bytes",
    "dumps",
    "load",
    "mark_cells",
    "prepare_save",
    "signature",
    "structure_problem",
    "validation_message",
]

Notebook = dict[str, Any]

_BUNDLE_OUTPUTS = ("execute_result", "display_data")
_SPLIT_MIMES = ("application/javascript", "image/svg+xml")  # non-text/ mimetypes nbformat splits


class NotANotebook(ValueError):
    """The data is not a notebook at all (not JSON, not an object, an unreadable version)."""


# -- reading -----------------------------------------------------------------------------------


def load(raw: bytes, tick: Tick = no_tick) -> Notebook:
    """Stored notebook bytes as a v4 notebook dict, as ``nbformat.reads(as_version=4)`` gives it:
    multi-line strings joined, transient keys dropped, cell ids added where v4.5 requires them.
    ``tick`` is called between cells.

    Raises:
        NotANotebook: the bytes are not a readable notebook: not JSON, or a structure nbformat
            cannot read (:func:`structure_problem`, as for a save; jupyter_server's 400
            "Unreadable Notebook").
    """
    try:
        data = pacing.loads(raw, tick)
    except ValueError as exc:
        raise NotANotebook(str(exc)) from None
    problem = structure_problem(data, tick=tick)
    if problem:
        raise NotANotebook(problem)
    return as_v4(data, tick)


def as_v4(data: Any, tick: Tick = no_tick) -> Notebook:
    """A notebook dict (as stored or as sent by a client) upgraded to v4, joined and stripped, in
    place where possible; ``tick`` is called between cells.

    Raises:
        NotANotebook: not a notebook object, or one nbformat cannot upgrade.
    """
    if not isinstance(data, dict) or not isinstance(data.get("cells", []), list):
        raise NotANotebook("a notebook is a JSON object with a list of cells")
    if data.get("nbformat") != 4:  # v3 and older are rare: nbformat upgrades them
        import nbformat

        try:
            upgraded = nbformat.reads(json.dumps(data), as_version=4)  # type: ignore[no-untyped-call]
            data = json.loads(json.dumps(upgraded))
        except Exception as exc:
            raise NotANotebook(f"nbformat {data.get('nbformat')!r} cannot be upgraded to 4: {exc}") from None
    cells = data.get("cells")
    if not isinstance(cells, list) or not isinstance(data.get("metadata", {}), dict):
        raise NotANotebook("a notebook has a list of cells and a metadata object")
    minor = data.get("nbformat_minor")
    add_ids = isinstance(minor, int) and minor >= 5
    for cell in cells:
        if isinstance(cell, dict):
            if add_ids and "id" not in cell:  # as nbformat's normalize() does, without the warning
                cell["id"] = uuid.uuid4().hex[:8]
            _rejoin_cell(cell)
            metadata = cell.get("metadata")
            if isinstance(metadata, dict):
                metadata.pop("trusted", None)  # transient (nbformat's strip_transient)
        tick()
    _strip_transient(data)
    return data  # type: ignore[no-any-return]


def _joined(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "".join(value)
    return value


def _is_json_mime(mime: str) -> bool:
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


def _rejoin_bundle(bundle: Any) -> None:
    if isinstance(bundle, dict):
        for mime, value in bundle.items():
            if isinstance(value, list) and not _is_json_mime(mime):
                bundle[mime] = _joined(value)


def _rejoin_cell(cell: dict[str, Any]) -> None:
    """nbformat's ``rejoin_lines`` for one cell."""
    source = cell.get("source")
    if isinstance(source, list):
        cell["source"] = "".join(source)
    attachments = cell.get("attachments")
    if isinstance(attachments, dict):
        for bundle in attachments.values():
            _rejoin_bundle(bundle)
    outputs = cell.get("outputs") if cell.get("cell_type") == "code" else None
    for output in outputs if isinstance(outputs, list) else ():
        if not isinstance(output, dict):
            continue
        kind = output.get("output_type")
        if kind in _BUNDLE_OUTPUTS:
            _rejoin_bundle(output.get("data"))
        elif kind and isinstance(output.get("text"), list):
            output["text"] = "".join(output["text"])


def _strip_transient(nb: Notebook) -> None:
    """nbformat's ``strip_transient`` for the notebook's own metadata (the cells' ``trusted``
    marks are dropped by :func:`as_v4`'s pass over the cells)."""
    metadata = nb.get("metadata")
    if isinstance(metadata, dict):
        for key in ("orig_nbformat", "orig_nbformat_minor", "signature"):
            metadata.pop(key, None)


# -- structure ---------------------------------------------------------------------------------

#: the major versions nbformat reads (1 to 3 are upgraded to 4)
READABLE_MAJORS = (1, 2, 3, 4)


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:20]!r}"
    return "an array" if isinstance(value, list) else "an object"


def _is_text(value: Any) -> bool:
    """A string, or a list of strings (a multi-line string as stored)."""
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def structure_problem(content: Any, *, upgraded: bool = False, tick: Tick = no_tick) -> str | None:
    """The first reason (in document order) why ``content`` cannot be stored as a notebook, or
    ``None``. Pure; reads only the skeleton, never the cells' text or outputs' data.

    A notebook is refused when nbformat could not read back what would be stored (its reader
    walks this skeleton with these types: ``nbformat.reads`` raises on it, and so does
    jupyter_server), or when what a client shows of a cell, its kind and its text, is unusable:

    - not an object; ``nbformat`` missing, not an integer, or not a version nbformat reads
      (:data:`READABLE_MAJORS`);
    - ``metadata`` missing or not an object; ``cells`` missing or not an array;
    - a cell that is not an object, or whose ``cell_type`` is missing or not a string, whose
      ``metadata`` is missing or not an object, whose ``id`` is not a string, or whose
      ``source`` is neither a string nor an array of strings; ``attachments`` that are not an
      object of objects;
    - a code cell's ``outputs`` that are not an array of objects, an output whose
      ``output_type`` is missing or not a string, whose ``data`` is not an object, or whose
      ``text`` is neither a string nor an array of strings.

    Everything else that breaks the schema (a missing ``outputs`` or ``source``, an unknown
    ``cell_type``, unknown keys, a non-integer ``nbformat_minor``) is stored with a validation
    message instead. ``upgraded``: ``content`` is the v4 result of upgrading an older version,
    so the version is not checked again. ``tick`` is called between cells.
    """
    if not isinstance(content, dict):
        return f"a notebook is a JSON object, not {_json_type(content)}"
    if not upgraded:
        major = content.get("nbformat")
        if major is None:
            return "nbformat (the format's major version, 4) is missing"
        if type(major) is not int:
            return f"nbformat must be an integer, not {_json_type(major)}"
        if major not in READABLE_MAJORS:
            return f"nbformat {major} is not a version this server reads (1 to 4)"
        if major != 4:
            return None  # checked once upgraded
    for key, kind in (("metadata", dict), ("cells", list)):
        if key not in content:
            return f"{key} is missing"
        if not isinstance(content[key], kind):
            expected = "an object" if kind is dict else "an array"
            return f"{key} must be {expected}, not {_json_type(content[key])}"
    for i, cell in enumerate(content["cells"]):
        problem = _cell_problem(cell)
        if problem:
            return f"cells[{i}]{problem}"
        tick()
    return None


def _cell_problem(cell: Any) -> str | None:
    """:func:`structure_problem` for one cell: the rest of the message, after ``cells[i]``."""
    if not isinstance(cell, dict):
        return f" must be an object, not {_json_type(cell)}"
    for key in ("cell_type", "metadata"):
        if key not in cell:
            return f" has no {key}"
    if not isinstance(cell["cell_type"], str):
        return f".cell_type must be a string, not {_json_type(cell['cell_type'])}"
    if not isinstance(cell["metadata"], dict):
        return f".metadata must be an object, not {_json_type(cell['metadata'])}"
    if "id" in cell and not isinstance(cell["id"], str):
        return f".id must be a string, not {_json_type(cell['id'])}"
    if "source" in cell and not _is_text(cell["source"]):
        return f".source must be a string or an array of strings, not {_json_type(cell['source'])}"
    attachments = cell.get("attachments", {})
    if not isinstance(attachments, dict) or not all(isinstance(b, dict) for b in attachments.values()):
        return ".attachments must be an object of objects (name: {mimetype: data})"
    outputs = cell.get("outputs", []) if cell["cell_type"] == "code" else []
    if not isinstance(outputs, list):
        return f".outputs must be an array, not {_json_type(outputs)}"
    for j, output in enumerate(outputs):
        if not isinstance(output, dict):
            return f".outputs[{j}] must be an object, not {_json_type(output)}"
        if not isinstance(output.get("output_type"), str):
            return f".outputs[{j}].output_type must be a string, not {_json_type(output.get('output_type'))}"
        if not isinstance(output.get("data", {}), dict):
            return f".outputs[{j}].data must be an object, not {_json_type(output['data'])}"
        if "text" in output and not _is_text(output["text"]):
            text = _json_type(output["text"])
            return f".outputs[{j}].text must be a string or an array of strings, not {text}"
    return None


# -- validation --------------------------------------------------------------------------------


Check = Callable[[Any], Any]


@cache
def _checks(minor: int) -> tuple[Check, dict[str, Check], dict[str, Check]] | None:
    """Compiled checks for nbformat 4.``minor``: the notebook without its cells' content, each cell
    type without its outputs, each output type. ``None`` for a minor nbformat has no schema for."""
    import fastjsonschema

    try:  # read without importing nbformat: its import pulls in jsonschema, seconds on some systems
        schema = json.loads((_schema_dir() / f"nbformat.v4.{minor}.schema.json").read_text("utf-8"))
    except OSError:
        return None
    schema = _exclusive_types(schema)
    definitions = schema["definitions"]
    definitions["code_cell"]["properties"]["outputs"]["items"] = {"type": "object"}
    notebook = dict(schema)
    notebook["properties"] = {**schema["properties"], "cells": {"type": "array"}}

    def compile_ref(definition: str) -> Check:
        schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
        return fastjsonschema.compile(schema)

    cells = {kind: compile_ref(f"{kind}_cell") for kind in ("raw", "markdown", "code")}
    outputs = {kind: compile_ref(kind) for kind in ("execute_result", "display_data", "stream", "error")}
    return fastjsonschema.compile(notebook), cells, outputs


#: JSON types no instance has two of (unlike "integer" and "number", or a bool and an integer
#: for some validators)
_DISTINCT_TYPES = frozenset({"string", "array", "object", "null"})


def _exclusive_types(schema: Any) -> Any:
    """``schema`` with every ``oneOf`` whose branches are ``{"type": T}`` of distinct
    :data:`_DISTINCT_TYPES` (an ``"array"`` branch may add ``items``) written as one ``type``
    list (and that ``items``). An instance has one type, so it matches one branch at most:
    ``oneOf`` is then the same as the type list, with ``items`` applying to arrays only."""
    if isinstance(schema, list):
        return [_exclusive_types(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: _exclusive_types(value) for key, value in schema.items()}
    branches = schema.get("oneOf")
    if not isinstance(branches, list) or "type" in schema or "items" in schema:
        return schema
    types = [b.get("type") if isinstance(b, dict) else None for b in branches]
    simple = all(
        isinstance(b, dict) and set(b) <= ({"type", "items"} if b.get("type") == "array" else {"type"})
        for b in branches
    )
    if not simple or not set(types) <= _DISTINCT_TYPES or len(set(types)) != len(types):
        return schema
    del schema["oneOf"]
    schema["type"] = types
    for branch in branches:
        if "items" in branch:
            schema["items"] = branch["items"]
    return schema


@cache
def _schema_dir() -> Path:
    spec = importlib.util.find_spec("nbformat")  # a top-level spec: nothing is imported
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("nbformat is not installed")
    return Path(spec.submodule_search_locations[0]) / "v4"


def _valid_fast(nb: Notebook, tick: Tick = no_tick) -> bool:
    """True when ``nb`` is certainly valid; False when the full validator must judge."""
    import fastjsonschema

    minor = nb.get("nbformat_minor")
    checks = _checks(minor) if nb.get("nbformat") == 4 and type(minor) is int else None
    if checks is None:
        return False
    notebook, cells, outputs = checks
    ids: set[Any] = set()
    try:
        notebook(nb)
        for cell in nb["cells"]:
            cells[cell["cell_type"]](cell)
            if "id" in cell:
                if cell["id"] in ids:
                    return False  # nbformat repairs duplicate ids (and warns): let it
                ids.add(cell["id"])
            if cell["cell_type"] == "code":
                for output in cell["outputs"]:
                    outputs[output["output_type"]](output)
            tick()
    except (fastjsonschema.JsonSchemaException, KeyError, TypeError):
        return False
    return True


def validation_message(nb: Notebook, tick: Tick = no_tick) -> str | None:
    """``None`` when ``nb`` is a valid notebook, else jupyter_server's message for the model.
    ``tick`` is called between the cells of the fast path (nbformat's own validator, for the
    notebooks that path cannot call valid, runs in one piece)."""
    if _valid_fast(nb, tick):
        return None
    import nbformat

    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        return f"Notebook validation failed: {exc.message}"
    except Exception as exc:  # nbformat asserts on a version that is not an integer
        return f"Notebook validation failed: {type(exc).__name__} {exc}".rstrip()
    return None


# -- trust -------------------------------------------------------------------------------------


def _code_cells(nb: Notebook) -> list[dict[str, Any]]:
    return [c for c in nb["cells"] if isinstance(c, dict) and c.get("cell_type") == "code"]


def mark_cells(nb: Notebook, trusted: bool) -> None:
    """Set ``metadata.trusted`` on every code cell (nbformat's ``mark_cells``)."""
    for cell in _code_cells(nb):
        if isinstance(cell.get("metadata"), dict):
            cell["metadata"]["trusted"] = trusted


def check_cells(nb: Notebook, tick: Tick = no_tick) -> bool:
    """Whether every code cell is trusted: marked so by the client, or without output that
    could run code (nbformat's ``check_cells``). Removes the marks, as nbformat does. ``tick``
    is called between cells."""
    trusted = True
    for cell in _code_cells(nb):
        tick()
        metadata = cell.get("metadata")
        if isinstance(metadata, dict) and metadata.pop("trusted", False):
            continue
        for output in cell.get("outputs") or ():
            if (
                isinstance(output, dict)
                and output.get("output_type") in _BUNDLE_OUTPUTS
                and set(output) - {"output_type", "execution_count", "metadata"}
            ):
                trusted = False
                break
    return trusted


def signature(nb: Notebook, secret: bytes, digestmod: str = "sha256", tick: Tick = no_tick) -> str:
    """nbformat's notebook signature: the HMAC of every key (sorted) and value, with
    ``metadata.signature`` left out, strings as UTF-8 and other scalars as ``str()``. The text
    goes to the HMAC in pieces, with ``tick`` called between objects."""
    digest = hmac.new(secret, digestmod=digestmod)
    parts: list[str] = []
    append = parts.append

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            if len(parts) >= PIECE_PARTS:
                digest.update("".join(parts).encode("utf-8"))
                parts.clear()
            tick()
            for key in sorted(obj):
                append(key)
                walk(obj[key])
        elif isinstance(obj, (list, tuple)):
            for item in obj:
                walk(item)
        else:
            append(obj if isinstance(obj, str) else str(obj))

    metadata = nb.get("metadata")
    stored = metadata.pop("signature", None) if isinstance(metadata, dict) else None
    try:
        walk(nb)
    finally:
        if stored is not None:
            metadata["signature"] = stored  # type: ignore[index]
    digest.update("".join(parts).encode("utf-8"))
    return digest.hexdigest()


# -- writing -----------------------------------------------------------------------------------


def _split_cell(cell: dict[str, Any]) -> None:
    """nbformat's ``split_lines`` for one cell."""
    source = cell.get("source")
    if isinstance(source, str):
        cell["source"] = source.splitlines(True)
    attachments = cell.get("attachments")
    for bundle in attachments.values() if isinstance(attachments, dict) else ():
        _split_bundle(bundle)
    outputs = cell.get("outputs") if cell.get("cell_type") == "code" else None
    for output in outputs if isinstance(outputs, list) else ():
        if isinstance(output, dict):
            kind = output.get("output_type")
            if kind in _BUNDLE_OUTPUTS:
                _split_bundle(output.get("data"))
            elif kind == "stream" and isinstance(output.get("text"), str):
                output["text"] = output["text"].splitlines(True)


def _split_bundle(bundle: Any) -> None:
    if not isinstance(bundle, dict):
        return
    for mime, value in bundle.items():
        if isinstance(value, str) and (mime.startswith("text/") or mime in _SPLIT_MIMES):
            bundle[mime] = value.splitlines(True)


def prepare_save(content: Any, tick: Tick = no_tick) -> tuple[bytes, str | None, bool, Notebook]:
    """A notebook model's content, to store: ``(file bytes, validation message, trusted,
    notebook)``. ``trusted`` says whether every code cell is trusted (the notebook is to be signed
    then); ``notebook`` is what is written, as a dict, to sign. A notebook that fails validation is
    still written (never lose a user's work); the message says why.

    The bytes are what ``nbformat.write`` writes: lines split, transient keys dropped,
    ``indent=1``, sorted keys, a final newline. ``content`` is changed in place. ``tick`` is
    called between cells (and the items of arrays) in every pass.

    Raises:
        NotANotebook: its structure is unusable (:func:`structure_problem`; the message names
            the first problem), an older version cannot be upgraded, or it is not storable as
            JSON text (lone surrogates, nesting too deep).
    """
    problem = structure_problem(content, tick=tick)
    if problem:
        raise NotANotebook(problem)
    try:
        v4 = content["nbformat"] == 4
        trusted = check_cells(content, tick) if v4 else False  # before as_v4 strips the marks
        nb = as_v4(content, tick)
        problem = None if v4 else structure_problem(nb, upgraded=True, tick=tick)
        if problem:
            raise NotANotebook(f"once upgraded from nbformat {content['nbformat']}: {problem}")
        message = validation_message(nb, tick)
        for cell in nb["cells"]:
            if isinstance(cell, dict):
                _split_cell(cell)
            tick()
        data = dump_bytes(nb, tick)
    except (TypeError, UnicodeEncodeError, RecursionError) as exc:
        raise NotANotebook(f"cannot store it as JSON: {exc}") from None
    return data, message, trusted, nb

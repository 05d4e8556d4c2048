"""Validate HTTP responses against an OpenAPI 3.1 document: the repository's ``api.yaml``, and
``nbserver/hub/hub-api.yaml`` (``tests/hub/hubopenapi.py``), each a :class:`Spec`.

``Spec(path, uri)`` loads one document; its checks, the contract every API test relies on:

* ``spec.doc`` is the parsed document; ``spec.paths()`` the set of its path templates.
* ``spec.find_operation(method, path)`` maps a request path (``base_url`` already stripped, no
  query string, starting with ``/``) to ``(template, operation)``. A ``{name}`` segment matches
  one or more characters other than ``/``; a path parameter whose schema has
  ``x-nbserver-slashes: true`` may also contain ``/``. When several templates match, the one
  with the most literal characters wins (so literal templates beat templated ones). No match
  raises ``AssertionError``.
* ``spec.validate_response(method, path, status, content_type, body)`` raises ``AssertionError``
  when the operation or the status is not documented; when a non-empty body has a media type
  that is not documented for that status; when a status documented without content has a body
  (3xx and 204 bodies are not checked); when a status documented with content has none (except
  for HEAD and 3xx); and when a JSON (``application/json`` or ``+json``) body is not JSON or
  does not match its schema. Only exact status codes are supported: the specs use no
  ``default`` or ``2XX``.
* ``spec.validate_schema(name, document)`` asserts that parsed JSON matches
  ``#/components/schemas/<name>`` (the conftest uses it for generic JSON 404 bodies).

Schemas are checked with jsonschema's Draft 2020-12 validator, format assertions on, with
``#/components/...`` references resolved inside the whole document (registered with
``referencing`` under the spec's ``uri``). Compiled validators are cached per spec.

For ``api.yaml`` the module keeps its functions: ``SPEC`` (the document), ``spec_paths()``,
``find_operation()``, ``validate_response()`` and ``validate_schema()`` are those of ``API``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

__all__ = ["API", "SPEC", "Spec", "find_operation", "spec_paths", "validate_response", "validate_schema"]

SPEC_FILE = Path(__file__).resolve().parent.parent / "api.yaml"
SPEC_URI = "urn:nbserver-api"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

_FORMAT_CHECKER = FormatChecker()
if "date-time" not in _FORMAT_CHECKER.checkers:  # jsonschema needs rfc3339-validator for this
    _RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", re.ASCII)

    def _is_date_time(value: object) -> bool:
        return not isinstance(value, str) or _RFC3339.fullmatch(value) is not None

    _FORMAT_CHECKER.checks("date-time")(_is_date_time)


class _Route(NamedTuple):
    template: str
    pattern: re.Pattern[str]
    literal_chars: int
    n_params: int


def _escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _resolve(spec: Mapping[str, Any], pointer: str) -> tuple[str, Any]:
    """Follow ``pointer`` (``/a/b``) in ``spec`` and any local ``$ref`` chain at its end.

    Returns the final pointer and the object there.
    """
    seen: set[str] = set()
    while True:
        node: Any = spec
        for token in pointer.split("/")[1:]:
            key = token.replace("~1", "/").replace("~0", "~")
            node = node[int(key)] if isinstance(node, list) else node[key]
        if not (isinstance(node, Mapping) and isinstance(node.get("$ref"), str)):
            return pointer, node
        ref: str = node["$ref"]
        assert ref.startswith("#/") and ref not in seen, f"unsupported or cyclic $ref {ref!r}"
        seen.add(ref)
        pointer = ref[1:]


def _slash_params(spec: Mapping[str, Any], template: str) -> set[str]:
    """Path parameters of ``template`` (any operation) whose schema allows ``/``."""
    item_ptr = "/paths/" + _escape_pointer(template)
    item = spec["paths"][template]
    lists = [(item_ptr, item)] + [
        (f"{item_ptr}/{method}", op) for method, op in item.items() if method in HTTP_METHODS
    ]
    names: set[str] = set()
    for owner_ptr, owner in lists:
        for i in range(len(owner.get("parameters", []))):
            param_ptr, param = _resolve(spec, f"{owner_ptr}/parameters/{i}")
            if param.get("in") != "path" or "schema" not in param:
                continue
            _, schema = _resolve(spec, f"{param_ptr}/schema")
            if schema.get("x-nbserver-slashes") is True:
                names.add(param["name"])
    return names


def _compile_routes(spec: Mapping[str, Any]) -> list[_Route]:
    routes = []
    for template in spec["paths"]:
        slashes = _slash_params(spec, template)
        regex, literal, n_params = "", 0, 0
        for part in re.split(r"(\{[^{}]+\})", template):
            if part.startswith("{") and part.endswith("}"):
                regex += ".+" if part[1:-1] in slashes else "[^/]+"
                n_params += 1
            else:
                regex += re.escape(part)
                literal += len(part)
        routes.append(_Route(template, re.compile(regex), literal, n_params))
    return routes


def _find_in(
    spec: Mapping[str, Any], routes: list[_Route], method: str, path: str, name: str = "api.yaml"
) -> tuple[str, dict[str, Any]]:
    assert path.startswith("/") and "?" not in path, f"{path!r}: expected a path without query"
    matches = [r for r in routes if r.pattern.fullmatch(path)]
    assert matches, f"{method.upper()} {path}: no path template matches; not in {name}"
    # the most specific template that has the method: ``POST /api/contents/a/trust`` is the
    # trust operation, ``GET`` of the same path reads the file named ``trust``
    with_method = [r for r in matches if method.lower() in spec["paths"][r.template]]
    assert with_method, (
        f"{method.upper()} {path}: {', '.join(r.template for r in matches)} "
        f"has no {method.upper()} operation; not in {name}"
    )
    best = min(with_method, key=lambda r: (-r.literal_chars, r.n_params, r.template))
    return best.template, spec["paths"][best.template][method.lower()]


def _check(validator: Draft202012Validator, document: object, where: str, raw: object, name: str) -> None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    details = "\n".join(f"  at {e.json_path}: {e.message}" for e in errors)
    assert not errors, f"{where}: body does not match {name}:\n{details}\nbody: {raw!r:.500}"


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _documented_media_type(content: Mapping[str, Any], media_type: str) -> str | None:
    """The key of ``content`` that covers ``media_type`` (exact, then ``type/*``, then ``*/*``)."""
    for key in (media_type, media_type.split("/")[0] + "/*", "*/*"):
        if key in content:
            return key
    return None


class Spec:
    """One OpenAPI document (``path``, a YAML file) and the checks of the module docstring;
    ``uri`` names it in the schema registry (``#/components/...`` references resolve in it)."""

    def __init__(self, path: Path, uri: str) -> None:
        self.file = path
        self.name = path.name  # what assertion messages call it
        self.uri = uri
        self.doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        self._registry: Registry[Any] = Registry().with_resource(uri, DRAFT202012.create_resource(self.doc))
        self._routes = _compile_routes(self.doc)
        self._validators: dict[str, Draft202012Validator] = {}

    def paths(self) -> set[str]:
        """The path templates, e.g. ``{"/api", "/api/status", ...}``."""
        return set(self.doc["paths"])

    def find_operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        """``(template, operation)`` for a request; ``AssertionError`` if the spec has none."""
        return _find_in(self.doc, self._routes, method, path, self.name)

    def _validator_at(self, schema_ptr: str) -> Draft202012Validator:
        validator = self._validators.get(schema_ptr)
        if validator is None:
            validator = self._validators[schema_ptr] = Draft202012Validator(
                {"$ref": f"{self.uri}#{schema_ptr}"}, registry=self._registry, format_checker=_FORMAT_CHECKER
            )
        return validator

    def validate_schema(self, name: str, document: object) -> None:
        """Assert that ``document`` (parsed JSON) matches ``#/components/schemas/<name>``."""
        assert name in self.doc["components"]["schemas"], f"schema {name!r} is not in {self.name}"
        validator = self._validator_at(f"/components/schemas/{_escape_pointer(name)}")
        _check(validator, document, name, document, self.name)

    def validate_response(
        self, method: str, path: str, status: int, content_type: str | None, body: bytes
    ) -> None:
        """Assert that a response is documented in the spec and matches its schema."""
        method = method.lower()
        template, operation = self.find_operation(method, path)
        where = f"{method.upper()} {path} -> {status} ({template})"
        responses = operation.get("responses", {})
        assert str(status) in responses, (
            f"{where}: status {status} is not documented; {self.name} lists {sorted(responses)}"
        )
        response_ptr, response = _resolve(
            self.doc, f"/paths/{_escape_pointer(template)}/{method}/responses/{status}"
        )
        content: Mapping[str, Any] = response.get("content") or {}
        exempt = 300 <= status < 400 or status == 204
        if not content:
            assert exempt or not body, f"{where}: {self.name} documents no body, got {body[:200]!r}"
            return
        if not body:
            assert exempt or method == "head", f"{where}: {self.name} documents a body, got none"
            return
        media_type = (content_type or "").split(";")[0].strip().lower()
        key = _documented_media_type(content, media_type)
        assert key is not None, (
            f"{where}: Content-Type {content_type!r} is not documented; {self.name} lists {sorted(content)}"
        )
        media_ptr, media = _resolve(self.doc, f"{response_ptr}/content/{_escape_pointer(key)}")
        if not _is_json(media_type) or "schema" not in media:
            return
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise AssertionError(
                f"{where}: body is not valid JSON ({exc}), as {self.name} documents: {body[:200]!r}"
            ) from None
        _check(self._validator_at(f"{media_ptr}/schema"), document, where, body[:500], self.name)


#: ``api.yaml``, and its checks as the module's functions
API = Spec(SPEC_FILE, SPEC_URI)
SPEC: dict[str, Any] = API.doc


def spec_paths() -> set[str]:
    """The path templates of ``api.yaml``."""
    return API.paths()


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """``(template, operation)`` for a request; ``AssertionError`` if ``api.yaml`` has none."""
    return API.find_operation(method, path)


def validate_schema(name: str, document: object) -> None:
    """Assert that ``document`` (parsed JSON) matches ``api.yaml``'s schema ``name``."""
    API.validate_schema(name, document)


def validate_response(method: str, path: str, status: int, content_type: str | None, body: bytes) -> None:
    """Assert that a response is documented in ``api.yaml`` and matches its schema."""
    API.validate_response(method, path, status, content_type, body)

"""Fast tests of ``tests/openapi.py`` and of ``api.yaml`` itself; no server needed."""

from __future__ import annotations

import json
from typing import Any

import openapi_spec_validator
import pytest
import yaml

from tests.openapi import (
    SPEC,
    SPEC_FILE,
    _compile_routes,
    _find_in,
    find_operation,
    spec_paths,
    validate_response,
    validate_schema,
)

JSON = "application/json"
STATUS: dict[str, Any] = {
    "started": "2024-05-01T12:00:00.000000Z",
    "last_activity": "2024-05-01T12:30:00.123456Z",
    "connections": 0,
    "kernels": 2,
}
ME: dict[str, Any] = {
    "identity": {
        "username": "0f3c",
        "name": "Anonymous Io",
        "display_name": "Anonymous Io",
        "initials": "AI",
        "avatar_url": None,
        "color": None,
    },
    "permissions": {"contents": ["read"], "updatable_fields": ["color"]},
}


def body(document: object) -> bytes:
    return json.dumps(document).encode()


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return [
        (template, method, op)
        for template, item in SPEC["paths"].items()
        for method, op in item.items()
        if method in methods
    ]


# -- the spec ---------------------------------------------------------------------------------


def test_spec_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"] == "3.1.0"
    openapi_spec_validator.validate(SPEC)


def test_spec_lists_exact_codes_and_how_anonymous_requests_are_refused() -> None:
    for template, method, op in operations():
        codes = set(op["responses"])
        assert all(isinstance(c, str) and c.isdigit() for c in codes), (template, method, codes)
        if not op.get("security", SPEC["security"]):
            continue
        api = template == "/api" or template.startswith("/api/")
        refusals = {"403"} if api else {"302", "403"}  # pages redirect, raw resources refuse
        assert refusals & codes, f"{method.upper()} {template} needs auth but lists no {refusals}"


def test_spec_paths() -> None:
    assert {"/", "/api", "/api/status", "/api/me", "/api/spec.yaml", "/login"} <= spec_paths()
    assert "/api/" not in spec_paths()


# -- what client generators need (tests/test_generated_client.py runs one) ---------------------


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        if twice:
            raise yaml.constructor.ConstructorError(None, None, f"keys given twice: {twice}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def test_no_key_is_given_twice() -> None:
    """A path or schema written twice silently replaces the first for PyYAML (hence for the
    tests), while openapi-python-client refuses the whole document."""
    assert yaml.load(SPEC_FILE.read_text(encoding="utf-8"), Loader=_StrictLoader) == SPEC


def test_every_operation_has_a_unique_id_and_declared_tags() -> None:
    """Generators name functions after ``operationId`` and modules after tags."""
    ids = [op.get("operationId") for _, _, op in operations()]
    assert None not in ids, [(t, m) for t, m, op in operations() if "operationId" not in op]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    declared = {tag["name"] for tag in SPEC["tags"]}
    assert {tag for _, _, op in operations() for tag in op.get("tags", [])} <= declared


def schemas_in(node: object, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema-like mapping in the document, with its JSON pointer."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((where, node))
        for key, value in node.items():
            found += schemas_in(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += schemas_in(value, f"{where}/{i}")
    return found


def test_every_array_schema_says_what_its_items_are() -> None:
    """openapi-python-client drops a model with an array without ``items`` (``Notebook.cells``
    was one) and then imports it, so the generated client did not import."""
    for where, schema in schemas_in(SPEC):
        types = schema.get("type")
        if types == "array" or (isinstance(types, list) and "array" in types):
            assert "items" in schema or "prefixItems" in schema, where


# -- find_operation -----------------------------------------------------------------------------


def test_find_operation_on_the_real_spec() -> None:
    template, op = find_operation("GET", "/api/status")
    assert template == "/api/status"
    assert op["operationId"] == "getStatus"
    assert find_operation("post", "/api/shutdown")[0] == "/api/shutdown"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/nope"), ("GET", "/api/status/"), ("GET", "/api/"), ("PUT", "/api/status")],
)
def test_find_operation_rejects_undocumented(method: str, path: str) -> None:
    with pytest.raises(AssertionError, match=r"not in api.yaml"):
        find_operation(method, path)


def test_find_operation_rejects_a_query_string() -> None:
    with pytest.raises(AssertionError, match=r"without query"):
        find_operation("GET", "/api/me?permissions={}")


FAKE_SPEC: dict[str, Any] = {
    "paths": {
        "/api/kernels/{kernel_id}": {"get": {"operationId": "kernel"}},
        "/api/kernels/{kernel_id}/restart": {"post": {"operationId": "restart"}},
        "/api/kernels/special": {"get": {"operationId": "special"}},
        "/api/contents/{path}": {
            "parameters": [{"$ref": "#/components/parameters/Path"}],
            "get": {"operationId": "contents"},
        },
        "/api/contents/{path}/checkpoints": {
            "get": {
                "operationId": "checkpoints",
                "parameters": [
                    {
                        "name": "path",
                        "in": "path",
                        "required": True,
                        "schema": {"$ref": "#/components/schemas/Path"},
                    },
                ],
            },
        },
    },
    "components": {
        "parameters": {
            "Path": {
                "name": "path",
                "in": "path",
                "required": True,
                "schema": {"$ref": "#/components/schemas/Path"},
            },
        },
        "schemas": {"Path": {"type": "string", "x-nbserver-slashes": True}},
    },
}


@pytest.mark.parametrize(
    ("method", "path", "operation_id"),
    [
        ("GET", "/api/kernels/abc-1", "kernel"),
        ("GET", "/api/kernels/special", "special"),  # literal beats {kernel_id}
        ("POST", "/api/kernels/abc-1/restart", "restart"),
        ("GET", "/api/contents/a.txt", "contents"),
        ("GET", "/api/contents/dir/sub/a.txt", "contents"),  # x-nbserver-slashes
        ("GET", "/api/contents/dir/checkpoints", "checkpoints"),  # more literal text wins
    ],
)
def test_template_matching(method: str, path: str, operation_id: str) -> None:
    routes = _compile_routes(FAKE_SPEC)
    assert _find_in(FAKE_SPEC, routes, method, path)[1]["operationId"] == operation_id


@pytest.mark.parametrize(
    "path", ["/api/kernels/", "/api/kernels/a/b", "/api/contents/", "/api/kernels/abc/restart/x"]
)
def test_template_matching_rejects(path: str) -> None:
    with pytest.raises(AssertionError, match=r"not in api.yaml"):
        _find_in(FAKE_SPEC, _compile_routes(FAKE_SPEC), "GET", path)


# -- validate_response: accepted ------------------------------------------------------------------


def test_accepts_a_correct_status_body() -> None:
    validate_response("GET", "/api/status", 200, "application/json; charset=UTF-8", body(STATUS))


def test_accepts_documented_responses() -> None:
    validate_response("GET", "/api", 200, JSON, b'{"version": "2.21.1"}')
    validate_response("GET", "/api/me", 200, JSON, body(ME))
    error = {"message": "Forbidden", "reason": None, "traceback": ""}  # extra keys are allowed
    validate_response("GET", "/api/me", 403, JSON, body(error))
    validate_response("GET", "/api/me", 400, JSON, b'{"message": "bad", "reason": "x"}')
    validate_response("GET", "/api/spec.yaml", 200, "text/x-yaml", b"openapi: 3.1.0\n")
    validate_response("POST", "/api/shutdown", 204, None, b"")
    validate_response("POST", "/login", 302, "text/html; charset=UTF-8", b"")
    validate_response("POST", "/login", 401, "text/html; charset=UTF-8", b"<form></form>")
    validate_response("POST", "/login", 403, "text/html; charset=UTF-8", b"<h1>403</h1>")
    validate_response("GET", "/tree", 200, "text/html; charset=UTF-8", b"<h1>nbserver</h1>")
    validate_response("GET", "/logout", 200, "text/html", b"<p>bye</p>")


# -- validate_response: rejected ------------------------------------------------------------------


def without(document: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != key}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (without(STATUS, "kernels"), "'kernels' is a required property"),
        ({**STATUS, "extra": 1}, "Additional properties are not allowed"),
        ({**STATUS, "kernels": "2"}, "is not of type 'integer'"),
        ({**STATUS, "connections": -1}, "less than the minimum"),
        ({**STATUS, "started": "yesterday"}, "is not a 'date-time'"),
        ({**STATUS, "started": "2024-05-01T12:00:00+00:00"}, r"does not match 'Z\$'"),
    ],
)
def test_rejects_a_wrong_status_body(document: dict[str, Any], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        validate_response("GET", "/api/status", 200, JSON, body(document))


@pytest.mark.parametrize(
    "document",
    [
        {**ME, "identity": {**ME["identity"], "extra": "x"}},  # nested $ref, exact model
        {**ME, "identity": without(ME["identity"], "color")},
        {**ME, "permissions": {"contents": "read", "updatable_fields": []}},
        {**ME, "permissions": {"contents": ["read"]}},  # updatable_fields is required
    ],
)
def test_rejects_a_wrong_me_body(document: dict[str, Any]) -> None:
    with pytest.raises(AssertionError, match=r"does not match api.yaml"):
        validate_response("GET", "/api/me", 200, JSON, body(document))


def test_rejects_an_error_body_without_reason() -> None:  # through components/responses
    with pytest.raises(AssertionError, match="'reason' is a required property"):
        validate_response("GET", "/api/status", 403, JSON, b'{"message": "Forbidden"}')


@pytest.mark.parametrize("payload", [b"not json", b'{"started": ', b"\xff\xfe"])
def test_rejects_a_non_json_body(payload: bytes) -> None:
    with pytest.raises(AssertionError, match="not valid JSON"):
        validate_response("GET", "/api/status", 200, JSON, payload)


def test_rejects_an_undocumented_status() -> None:
    with pytest.raises(AssertionError, match="status 404 is not documented"):
        validate_response("GET", "/api/status", 404, JSON, b'{"message": "x", "reason": null}')


@pytest.mark.parametrize("content_type", ["text/html; charset=UTF-8", "text/plain", None])
def test_rejects_an_undocumented_content_type(content_type: str | None) -> None:
    with pytest.raises(AssertionError, match=r"Content-Type .* is not documented"):
        validate_response("GET", "/api/status", 200, content_type, body(STATUS))


def test_rejects_a_missing_body() -> None:
    with pytest.raises(AssertionError, match="documents a body, got none"):
        validate_response("GET", "/api/status", 200, JSON, b"")


def test_rejects_an_undocumented_operation() -> None:
    with pytest.raises(AssertionError, match=r"not in api.yaml"):
        validate_response("DELETE", "/api/status", 200, JSON, body(STATUS))


def test_validate_schema() -> None:
    validate_schema("Error", {"message": "Not Found", "reason": None})
    with pytest.raises(AssertionError, match=r"'message' is a required property"):
        validate_schema("Error", {"reason": None})
    with pytest.raises(AssertionError, match=r"schema 'Nope' is not in api.yaml"):
        validate_schema("Nope", {})

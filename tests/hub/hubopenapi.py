"""``nbserver/hub/hub-api.yaml`` held to the same rules as ``api.yaml``: a thin wrapper over
``tests/openapi.py``'s path matching, ``$ref`` resolution and checks, with a registry of its own
(``urn:nbserver-hub-api``). ``validate_response(method, path, status, content_type, body)``
raises AssertionError exactly as ``tests.openapi.validate_response`` does."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests import openapi

SPEC_FILE = Path(__file__).resolve().parents[2] / "nbserver" / "hub" / "hub-api.yaml"
SPEC_URI = "urn:nbserver-hub-api"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
_REGISTRY: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(SPEC))
_ROUTES = openapi._compile_routes(SPEC)


def spec_paths() -> set[str]:
    return set(SPEC["paths"])


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    return openapi._find_in(SPEC, _ROUTES, method, path)


@functools.cache
def _validator(template: str, method: str, status: str, media_type: str) -> Draft202012Validator:
    esc = openapi._escape_pointer
    response_ptr, _ = openapi._resolve(SPEC, f"/paths/{esc(template)}/{method}/responses/{status}")
    media_ptr, _ = openapi._resolve(SPEC, f"{response_ptr}/content/{esc(media_type)}")
    return Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{media_ptr}/schema"}, registry=_REGISTRY, format_checker=openapi._FORMAT_CHECKER
    )


def validate_response(method: str, path: str, status: int, content_type: str | None, body: bytes) -> None:
    method = method.lower()
    template, operation = find_operation(method, path)
    where = f"{method.upper()} {path} -> {status} ({template})"
    responses = operation.get("responses", {})
    assert str(status) in responses, (
        f"{where}: status {status} is not documented; hub-api.yaml lists {sorted(responses)}"
    )
    esc = openapi._escape_pointer
    response_ptr, response = openapi._resolve(SPEC, f"/paths/{esc(template)}/{method}/responses/{status}")
    content = response.get("content") or {}
    exempt = 300 <= status < 400 or status == 204
    if not content:
        assert exempt or not body, f"{where}: hub-api.yaml documents no body, got {body[:200]!r}"
        return
    if not body:
        assert exempt or method == "head", f"{where}: hub-api.yaml documents a body, got none"
        return
    media_type = (content_type or "").split(";")[0].strip().lower()
    key = openapi._documented_media_type(content, media_type)
    assert key is not None, f"{where}: Content-Type {content_type!r} is not documented ({sorted(content)})"
    _, media = openapi._resolve(SPEC, f"{response_ptr}/content/{esc(key)}")
    if not openapi._is_json(media_type) or "schema" not in media:
        return
    document = json.loads(body)
    openapi._check(_validator(template, method, str(status), key), document, where, body[:500])

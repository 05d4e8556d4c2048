"""``tests/hub/hubopenapi.py`` is ``tests.openapi.Spec`` over ``hub-api.yaml``: the same checks,
the same failures (AssertionError naming the spec), for both documents.

Bad responses tried, against each spec: a body that is not JSON where JSON is documented, a
status not documented, a Content-Type not documented, a JSON body its schema refuses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests import openapi
from tests.hub import hubopenapi

JSON = "application/json"
Validate = Callable[[str, str, int, "str | None", bytes], None]

CASES = [
    (openapi.validate_response, "api.yaml", "/api/status"),
    (hubopenapi.validate_response, "hub-api.yaml", "/hub/api/user"),
]


@pytest.mark.parametrize(("validate", "name", "path"), CASES, ids=["api", "hub"])
@pytest.mark.parametrize(
    ("status", "content_type", "body", "message"),
    [
        (200, JSON, b"{not json", "body is not valid JSON"),
        (418, JSON, b"{}", "status 418 is not documented"),
        (200, "text/csv", b"a,b", "Content-Type 'text/csv' is not documented"),
        (200, JSON, b"[1, 2]", "body does not match"),
    ],
    ids=["not-json", "undocumented-status", "undocumented-type", "schema"],
)
def test_both_specs_fail_the_same_way(
    validate: Validate, name: str, path: str, status: int, content_type: str, body: bytes, message: str
) -> None:
    """The hub's copy of the checks raised ``JSONDecodeError`` (not an AssertionError) for a
    body that is not JSON, and its messages said what api.yaml's said, in other words."""
    with pytest.raises(AssertionError) as info:
        validate("GET", path, status, content_type, body)
    assert message in str(info.value) and name in str(info.value)


def test_each_spec_resolves_its_own_references() -> None:
    """The same schema name in both documents is checked against the document it is in: the
    Spec's ``uri`` keeps their registries apart."""
    assert hubopenapi.HUB.uri != openapi.API.uri
    assert hubopenapi.find_operation("GET", "/hub/api/users/alice")[0] == "/hub/api/users/{name}"
    with pytest.raises(AssertionError, match=r"no path template matches; not in api\.yaml"):
        openapi.find_operation("GET", "/hub/api/users/alice")
    with pytest.raises(AssertionError, match=r"no path template matches; not in hub-api\.yaml"):
        hubopenapi.find_operation("GET", "/api/status")
    assert hubopenapi.spec_paths() == set(hubopenapi.SPEC["paths"])

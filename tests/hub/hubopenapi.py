"""``nbserver/hub/hub-api.yaml`` held to the same rules as ``api.yaml``: one more
:class:`tests.openapi.Spec` (registered as ``urn:nbserver-hub-api``). ``validate_response(method,
path, status, content_type, body)`` raises AssertionError exactly as
``tests.openapi.validate_response`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.openapi import Spec

__all__ = ["HUB", "SPEC", "find_operation", "spec_paths", "validate_response"]

SPEC_FILE = Path(__file__).resolve().parents[2] / "nbserver" / "hub" / "hub-api.yaml"
SPEC_URI = "urn:nbserver-hub-api"
HUB = Spec(SPEC_FILE, SPEC_URI)
SPEC: dict[str, Any] = HUB.doc

spec_paths = HUB.paths
find_operation = HUB.find_operation
validate_response = HUB.validate_response

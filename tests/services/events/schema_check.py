"""Events held against jupyter_server's own schema files (not nbserver's copy of them)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import jupyter_server
import yaml

SCHEMAS = Path(jupyter_server.__file__).parent / "event_schemas"
CONTENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
KERNEL_ACTIONS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
_FILES = {CONTENTS: "contents_service/v1.yaml", KERNEL_ACTIONS: "kernel_actions/v1.yaml"}
METADATA = ("__timestamp__", "__schema__", "__schema_version__", "__metadata_version__")


def upstream_schema(schema_id: str) -> dict[str, Any]:
    schema: dict[str, Any] = yaml.safe_load((SCHEMAS / _FILES[schema_id]).read_text())
    return schema


def check_data(schema_id: str, data: dict[str, Any]) -> None:
    """``data`` is valid for jupyter_server's schema ``schema_id`` (draft 7, as jupyter_events)."""
    jsonschema.Draft7Validator(upstream_schema(schema_id)).validate(data)


def check_frame(frame: dict[str, Any]) -> dict[str, Any]:
    """A frame of ``/api/events/subscribe``: jupyter_server's ``{"schema_id", **data}`` plus the
    jupyter_events record metadata; returns its data (the frame without those keys)."""
    schema_id = frame["schema_id"]
    assert frame["__schema__"] == schema_id and frame["__metadata_version__"] == 1
    assert frame["__schema_version__"] == str(upstream_schema(schema_id)["version"])
    assert frame["__timestamp__"].endswith("Z")
    assert datetime.fromisoformat(frame["__timestamp__"]).utcoffset() is not None
    data = {k: v for k, v in frame.items() if k != "schema_id" and k not in METADATA}
    check_data(schema_id, data)
    return data

"""The event schemas every server registers: jupyter_server 2.21's core schemas, as data.

Their ``$id``, ``version`` and the shape of their data are the contract (clients subscribe to
these ids, and ``POST /api/events`` names them), so they are jupyter_server's, property for
property; only the long descriptions are shortened. jupyter_server's third core schema,
``gateway_client/v1``, is left out: nbserver has no gateway client to emit it.
"""

from __future__ import annotations

from typing import Any

from ...errors import NBServerError

__all__ = ["CONTENTS", "CORE_SCHEMAS", "KERNEL_ACTIONS", "kernel_action"]

CONTENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"
KERNEL_ACTIONS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"

_CONTENTS_SCHEMA: dict[str, Any] = {
    "$id": CONTENTS,
    "version": "1",
    "title": "Contents Manager activities",
    "personal-data": True,
    "description": "Actions on files through the contents API; recorded when an action succeeds.",
    "type": "object",
    "required": ["action", "path"],
    "properties": {
        "action": {
            "enum": ["get", "create", "save", "upload", "rename", "copy", "delete"],
            "description": "The contents action performed.",
        },
        "path": {
            "type": "string",
            "description": "The API path acted on (the new path of a rename or copy).",
        },
        "source_path": {"type": "string", "description": "The source of a rename or copy."},
    },
}

_KERNEL_ACTIONS_SCHEMA: dict[str, Any] = {
    "$id": KERNEL_ACTIONS,
    "version": "1",
    "title": "Kernel Manager activities",
    "personal-data": True,
    "description": "Kernel starts, interrupts, restarts and shutdowns, successful or not.",
    "type": "object",
    "required": ["action", "msg"],
    "properties": {
        "action": {"enum": ["start", "interrupt", "shutdown", "restart"]},
        "kernel_id": {"type": "string", "description": "Required except for a failed start."},
        "kernel_name": {"type": "string"},
        "status": {"enum": ["error", "success"]},
        "status_code": {"type": "number", "description": "The HTTP status of a failed action."},
        "msg": {"type": "string", "description": "What happened, for people."},
    },
    "if": {"not": {"properties": {"status": {"const": "error"}, "action": {"const": "start"}}}},
    "then": {"required": ["kernel_id"]},
}

#: registered on every :class:`~.bus.EventBus` made by :func:`~.bus.default_bus`
CORE_SCHEMAS: tuple[dict[str, Any], ...] = (_CONTENTS_SCHEMA, _KERNEL_ACTIONS_SCHEMA)


#: jupyter_server's success messages: "Kernel <id> was <done>."
_DONE = {"start": "started", "interrupt": "interrupted", "restart": "restarted", "shutdown": "shutdown"}


def kernel_action(
    action: str, kernel_id: str | None, name: str | None, error: Exception | None = None
) -> dict[str, Any]:
    """The data of a ``kernel_actions`` event, as jupyter_server makes it: ``status``
    ``"success"`` with ``"Kernel <id> was <done>."``, or ``"error"`` with the error's message and
    HTTP status (500 for an error outside the NBServerError family); ``kernel_id`` and
    ``kernel_name`` when known."""
    data: dict[str, Any] = {"action": action, "status": "success" if error is None else "error"}
    if kernel_id is not None:
        data["kernel_id"] = kernel_id
    if name is not None:
        data["kernel_name"] = name
    if error is None:
        data["msg"] = f"Kernel {kernel_id} was {_DONE[action]}."
    else:
        data["msg"] = error.message if isinstance(error, NBServerError) else str(error)
        data["status_code"] = error.status if isinstance(error, NBServerError) else 500
    return data

"""``/api/events`` and ``/api/events/subscribe``: the server's event bus (jupyter_events' records)."""

"""Terminals: ``/api/terminals`` and ``/terminals/websocket/{name}`` (needs terminado)."""

"""Kernels: starting them, and the websocket bridge between browsers and their ZMQ channels."""

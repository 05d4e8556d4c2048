"""The JupyterHub API version the hub implements: ``GET /hub/api`` reports it and every response
carries it as ``X-JupyterHub-Version`` (clients such as jupyterhub-idle-culler and single-user
servers switch features on it)."""

API_VERSION = "6.1.1"

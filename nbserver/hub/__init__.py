"""A thin multi-user hub: logins, one server per user (JupyterHub's single-user contract), a
streaming proxy, JupyterHub's REST API and OAuth provider, an idle culler.

``python -m nbserver hub`` (:mod:`nbserver.hub.cli`). It never imports ``nbserver.services``:
user servers are reached over HTTP only, so a server that works under JupyterHub works here.
"""

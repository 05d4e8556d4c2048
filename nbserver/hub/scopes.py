"""Scopes, as JupyterHub names them, for the hub's two roles. Pure.

JupyterHub's RBAC is larger than a team hub needs; this keeps its *scope strings* (what tokens
carry and what ``GET /hub/api/user`` reports, so that single-user servers and tools such as
jupyterhub-idle-culler judge them unchanged) and two roles:

- a user holds the scopes of JupyterHub's ``self`` on themselves: ``read:users!user=<name>``,
  ``servers!user=<name>``, ``access:servers!user=<name>``, ``users:activity!user=<name>``,
  ``tokens!user=<name>``, ...;
- an admin holds the same scopes unfiltered, plus ``admin:users``, ``admin:servers``,
  ``list:users`` and ``admin-ui``.

Scopes are stored expanded (a scope implies no other here), so a check compares bases: a held
scope grants a required ``base`` on user ``u`` when its base is ``base`` and it has no filter, or
the filter ``!user=u``, or (for server scopes) ``!server=u/<server>``.

Tokens: an API token holds its owner's scopes (JupyterHub's ``inherit``) unless it was made
with fewer; a user server's own token holds ``users:activity!user=<u>`` and
``access:servers!server=<u>/`` (JupyterHub's ``server`` role); an OAuth token issued to a user
server at login holds ``access:servers!server=<u>/`` and the owner's identify scopes.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ADMIN_ONLY",
    "SELF_SCOPES",
    "allows",
    "covered",
    "grants",
    "oauth_scopes",
    "server_token_scopes",
    "subset_of",
    "user_scopes",
]

#: JupyterHub's ``self`` expanded: what a user may do to themselves
SELF_SCOPES = (
    "access:servers",
    "delete:servers",
    "read:servers",
    "read:tokens",
    "read:users",
    "read:users:activity",
    "read:users:groups",
    "read:users:name",
    "servers",
    "tokens",
    "users:activity",
)
#: what only admins hold (unfiltered)
ADMIN_ONLY = ("admin-ui", "admin:servers", "admin:users", "list:users", "users")

_SERVER_SCOPES = frozenset({"access:servers", "servers", "read:servers", "delete:servers"})


def user_scopes(name: str, admin: bool) -> frozenset[str]:
    """The scopes of a user (or an admin)."""
    if admin:
        return frozenset((*SELF_SCOPES, *ADMIN_ONLY))
    return frozenset(f"{scope}!user={name}" for scope in SELF_SCOPES)


def server_token_scopes(name: str) -> frozenset[str]:
    """The scopes of a user server's own token (``JUPYTERHUB_API_TOKEN``): JupyterHub's ``server`` role."""
    return frozenset(
        {
            f"users:activity!user={name}",
            f"access:servers!server={name}/",
            f"read:users:name!user={name}",
            f"read:users:groups!user={name}",
        }
    )


def oauth_scopes(owner: str, user: str) -> frozenset[str]:
    """The scopes of the token ``owner``'s server gets at login for ``user`` (its owner, or an
    admin): access to that server, and the user's identify scopes."""
    return frozenset(
        {
            f"access:servers!server={owner}/",
            f"read:users:name!user={user}",
            f"read:users:groups!user={user}",
            f"read:users:activity!user={user}",
        }
    )


def grants(held: str, base: str, user: str | None) -> bool:
    """Whether the held scope ``held`` grants ``base`` on ``user``'s resources (``user=None``:
    on every user, which only an unfiltered scope grants)."""
    held_base, bang, flt = held.partition("!")
    if held_base != base:
        return False
    if not bang:
        return True
    if user is None:
        return False
    kind, _, value = flt.partition("=")
    if kind == "user":
        return value == user
    if kind == "server" and base in _SERVER_SCOPES:
        return value.partition("/")[0] == user
    return False


def allows(held: Iterable[str], base: str, user: str | None) -> bool:
    """Whether any held scope grants ``base`` on ``user`` (:func:`grants`)."""
    return any(grants(h, base, user) for h in held)


def covered(scope: str, owner: frozenset[str]) -> bool:
    """Whether the owner's scopes cover ``scope``: the same scope, or a narrower one
    (``x!user=u`` under an unfiltered ``x``; ``x!server=u/s`` under ``x!user=u``)."""
    if scope in owner:
        return True
    base, bang, flt = scope.partition("!")
    if not (bang and flt):
        return False
    if base in owner:
        return True
    kind, _, value = flt.partition("=")
    return kind == "server" and f"{base}!user={value.partition('/')[0]}" in owner


def subset_of(requested: Iterable[str], owner: frozenset[str]) -> bool:
    """Whether the owner's scopes cover every requested one: a token never holds more than its owner."""
    return all(covered(scope, owner) for scope in requested)

"""Password hashes: argon2 (what ``python -m nbserver password`` writes) and, for people bringing a
``jupyter_server_config.json`` along, jupyter's legacy ``algo:salt:hexdigest`` form.

Hashes are stored as ``argon2:<PHC string>``, the same text jupyter_server writes, so a hash moves
between the two servers unchanged.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["hash_password", "verify_password"]

_PREFIX = "argon2:"


def hash_password(password: str) -> str:
    """Return an ``argon2:`` hash of ``password`` (argon2id, the library's recommended parameters)."""
    if not password:
        raise ValueError("the password is empty")
    from argon2 import PasswordHasher

    return _PREFIX + PasswordHasher().hash(password)


def verify_password(stored: str, password: str) -> bool:
    """True if ``password`` matches ``stored``. Never raises for a wrong password or a bad hash.

    Comparisons are constant-time; an argon2 check takes tens of milliseconds on purpose, so call
    it off the event loop.
    """
    if not password:
        return False
    if stored.startswith(_PREFIX) or stored.startswith("$argon2"):
        from argon2 import PasswordHasher
        from argon2.exceptions import Argon2Error, InvalidHashError

        try:
            return bool(PasswordHasher().verify(stored.removeprefix(_PREFIX), password))
        except (Argon2Error, InvalidHashError):
            return False
    algorithm, _, rest = stored.partition(":")
    salt, _, digest = rest.partition(":")
    if not digest or algorithm not in hashlib.algorithms_guaranteed:
        return False
    actual = hashlib.new(algorithm, password.encode() + salt.encode()).hexdigest()
    return hmac.compare_digest(actual, digest)

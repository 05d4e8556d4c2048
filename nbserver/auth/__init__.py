"""Identity (token, cookie, password) and the Origin/XSRF policy: one path for HTTP and websockets."""

from .identity import Authenticator, AuthResult, Identity, User, Via
from .passwords import hash_password, verify_password

__all__ = [
    "AuthResult",
    "Authenticator",
    "Identity",
    "User",
    "Via",
    "hash_password",
    "verify_password",
]

"""CSRF protection for the answering forms without JavaScript: a signed double-submit cookie.

The page sets a random cookie (`nonce`) and puts `HMAC(key, nonce || link token)` in a hidden
field. A POST is accepted only when the field matches the cookie it came with: another site
can make a browser send the cookie but can neither read it nor compute the field, and the
field is bound to one link, so it cannot be replayed on another invitation. The key is derived
from the server secret (independent of every other key).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from survey.kernel.crypto import derive_key

__all__ = ["COOKIE_NAME", "FIELD_NAME", "CsrfSigner"]

COOKIE_NAME = "s_csrf"
FIELD_NAME = "_csrf_token"
NONCE_BYTES = 16


class CsrfSigner:
    """Makes and checks the form field for a (cookie nonce, link token) pair."""

    def __init__(self, secret_key: bytes) -> None:
        self._key = derive_key(secret_key, "answering-csrf")

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(NONCE_BYTES)

    def field_for(self, nonce: str, token: str) -> str:
        message = f"{nonce}\x1f{token.strip().lower()}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, nonce: str | None, token: str, field: str | None) -> bool:
        if not nonce or not field or len(nonce) > 64:
            return False
        return hmac.compare_digest(self.field_for(nonce, token), field)

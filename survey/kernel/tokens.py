"""The web-answering token of an invitation: derived from the server secret, never stored.

    token = base32(HMAC-SHA256(derive_key(secret, "invitation-token"), "invitation:<id>"))[:16]

16 base32 characters carry 80 bits, and since the HMAC key never leaves the server a token
cannot be guessed from an invitation id (guessing succeeds with probability 2^-80 per try).
Only `token_hash(token)` (SHA-256, hex) is stored in `Invitation.token_hash`, so a database
leak does not reveal working links. Nor do stored messages: a text that carries the link is
stored with `TOKEN_MASK` in the token's place, and the dispatcher puts the recomputed token
there only in the SMS it hands to the gateway.

Tokens are lower-case base32 (a-z, 2-7): no characters that SMS apps break links on, and
case-insensitive, so `token_hash` folds case before hashing (a link retyped in capitals works).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from survey.kernel.crypto import derive_key

__all__ = [
    "TOKEN_BITS",
    "TOKEN_LENGTH",
    "TOKEN_MASK",
    "looks_like_token",
    "token_for",
    "token_for_invitation",
    "token_hash",
    "token_key",
]

TOKEN_BITS = 80
TOKEN_LENGTH = TOKEN_BITS // 5  # base32: 5 bits per character
# What a stored message carries instead of the token: as long as a token (so the SMS parts
# counted on the stored text are those sent) and never one ('*' is not base32).
TOKEN_MASK = "*" * TOKEN_LENGTH
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def token_key(secret_key: bytes) -> bytes:
    """The HMAC key for tokens, independent of every other key derived from the secret."""
    return derive_key(secret_key, "invitation-token")


def token_for(secret_key: bytes, invitation_id: int) -> str:
    """The invitation's token (16 lower-case base32 characters, 80 bits)."""
    if isinstance(invitation_id, bool) or not isinstance(invitation_id, int) or invitation_id <= 0:
        raise ValueError(f"invitation_id must be a positive whole number; got {invitation_id!r}")
    digest = hmac.new(
        token_key(secret_key), f"invitation:{invitation_id}".encode(), hashlib.sha256
    ).digest()
    return base64.b32encode(digest[: TOKEN_BITS // 8]).decode("ascii").lower()


def token_for_invitation(secret_keys: Sequence[bytes], invitation_id: int, stored_hash: str) -> str:
    """The token whose hash is stored: links sent before a key rotation keep working, so a
    reminder repeats the link the citizen already has. Falls back to the current key."""
    for secret in secret_keys:
        token = token_for(secret, invitation_id)
        if token_hash(token) == stored_hash:
            return token
    return token_for(secret_keys[0], invitation_id)


def token_hash(token: str) -> str:
    """SHA-256 (hex) of the token as stored in `Invitation.token_hash`; case-insensitive."""
    return hashlib.sha256(token.strip().lower().encode("utf-8")).hexdigest()


def looks_like_token(candidate: str) -> bool:
    """Cheap shape check before any database look-up (length and alphabet only)."""
    value = candidate.strip().lower()
    return len(value) == TOKEN_LENGTH and set(value) <= _ALPHABET

"""Bearer credentials: generated with 256 bits of randomness, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIXES = {"agency": "agk_", "staff": "stk_"}


def new_key(kind: str) -> str:
    """A new key such as `agk_...`; the prefix tells staff what a key is for at a glance."""
    return KEY_PREFIXES[kind] + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:10]


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A newly issued key: `key` is the only copy there will ever be; show it once."""

    owner: str
    key: str
    prefix: str


ONCE = "shown only in this response; only its hash is stored"

"""Keys derived from the server secret, and what they protect.

One secret (`SURVEY_SECRET_KEY`) yields independent keys by HKDF, one per purpose, so that a
leak of one use never helps another:
- `phone-encryption`: AES-256-GCM for the phone numbers of sampled units;
- `phone-hash`: HMAC-SHA256 of a normalised phone, for the contact rule and opt-outs (stable,
  so the same phone always finds its history, yet useless without the secret);
- `sampling`: HMAC-SHA256 key under which sampling decisions are drawn.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


def derive_key(secret: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        secret
    )


@dataclass(frozen=True, slots=True)
class PhoneVault:
    """Encrypts phones at rest and hashes them for look-ups; the only holder of those keys."""

    encryption_key: bytes = field(repr=False)
    hash_key: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret: bytes) -> PhoneVault:
        return cls(derive_key(secret, "phone-encryption"), derive_key(secret, "phone-hash"))

    @property
    def key_id(self) -> str:
        """Names the encryption key stored beside each ciphertext (for key rotation)."""
        return hashlib.sha256(b"key-id" + self.encryption_key).hexdigest()[:8]

    def encrypt(self, phone: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self.encryption_key).encrypt(nonce, phone.encode(), b"phone")

    def decrypt(self, blob: bytes) -> str:
        nonce, ciphertext = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        return AESGCM(self.encryption_key).decrypt(nonce, ciphertext, b"phone").decode()

    def phone_hash(self, phone: str) -> str:
        return hmac.new(self.hash_key, phone.encode(), hashlib.sha256).hexdigest()

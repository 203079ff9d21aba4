"""Keys derived from the server secret, and what they protect.

One secret (`SURVEY_SECRET_KEY`) yields independent keys by HKDF, one per purpose, so that a
leak of one use never helps another:
- `phone-encryption`: AES-256-GCM for the phone numbers of sampled units;
- `phone-hash`: HMAC-SHA256 of a normalised phone, for the contact rule and opt-outs (stable,
  so the same phone always finds its history, yet useless without the secret);
- `sampling`: HMAC-SHA256 key under which sampling decisions are drawn.

Key rotation: a vault built with `from_secrets(current, *previous)` encrypts and hashes under
the current secret only, but decrypts a ciphertext under whichever key its key id names and
offers `phone_hashes(phone)` (current first) so that look-ups still find rows hashed under an
earlier secret. `survey keys rotate` moves stored rows to the current key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
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
    previous: tuple[PhoneVault, ...] = field(default=(), repr=False)

    @classmethod
    def from_secret(cls, secret: bytes) -> PhoneVault:
        return cls(derive_key(secret, "phone-encryption"), derive_key(secret, "phone-hash"))

    @classmethod
    def from_secrets(cls, secrets: Sequence[bytes]) -> PhoneVault:
        """The first secret is current; the others only decrypt and match old hashes."""
        current, *older = secrets
        vault = cls.from_secret(current)
        if not older:
            return vault
        return cls(
            vault.encryption_key,
            vault.hash_key,
            tuple(cls.from_secret(secret) for secret in older),
        )

    @property
    def key_id(self) -> str:
        """Names the encryption key stored beside each ciphertext (for key rotation)."""
        return hashlib.sha256(b"key-id" + self.encryption_key).hexdigest()[:8]

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id this vault can decrypt, the current one first."""
        return (self.key_id, *(old.key_id for old in self.previous))

    def encrypt(self, phone: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self.encryption_key).encrypt(nonce, phone.encode(), b"phone")

    def decrypt(self, blob: bytes, key_id: str | None = None) -> str:
        """Decrypt under the key `key_id` names; without one (or an unknown one) try each key.

        Raises `cryptography.exceptions.InvalidTag` when no known key opens the blob.
        """
        vaults = (self, *self.previous)
        if key_id:
            named = [vault for vault in vaults if vault.key_id == key_id]
            vaults = (*named, *(vault for vault in vaults if vault.key_id != key_id))
        for vault in vaults:
            try:
                return vault._decrypt_own(blob)
            except InvalidTag:
                continue
        raise InvalidTag()

    def _decrypt_own(self, blob: bytes) -> str:
        nonce, ciphertext = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        return AESGCM(self.encryption_key).decrypt(nonce, ciphertext, b"phone").decode()

    def phone_hash(self, phone: str) -> str:
        """The phone's hash under the current key (what new rows store)."""
        return hmac.new(self.hash_key, phone.encode(), hashlib.sha256).hexdigest()

    def phone_hashes(self, phone: str) -> tuple[str, ...]:
        """The phone's hash under every key, current first: look-ups match any of them."""
        return (self.phone_hash(phone), *(old.phone_hash(phone) for old in self.previous))

"""Moving stored phones to the current secret after `SURVEY_SECRET_KEY` was rotated.

After a rotation the old secret goes into `SURVEY_PREVIOUS_SECRET_KEYS`: everything keeps
working at once (ciphertexts are opened under the key their `phone_key_id` names; look-ups
by phone compute the hash under every key). `reencrypt_phones` then moves the rows, in
batches of one short transaction each, so the service keeps running meanwhile:

- each sampled unit still holding a phone under an older key is decrypted, encrypted under
  the current key (new `phone_key_id`) and re-hashed;
- contact-rule rows and opt-outs stored under that phone's old hash move to the new hash in
  the same transaction, so the contact rule and opt-outs keep matching by stored hash too.

Contacts and opt-outs whose phone is no longer stored anywhere (erased by retention) cannot
be re-hashed: they keep matching through the old secret as long as it stays in
`SURVEY_PREVIOUS_SECRET_KEYS` (see docs/operations.md for when it may be dropped).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from sqlalchemy.engine import Connection

from survey.context import AppContext
from survey.outreach import store

__all__ = ["KeyStatus", "RotationReport", "key_status", "reencrypt_phones"]


@dataclass
class RotationReport:
    """What one `reencrypt_phones` run did."""

    reencrypted: int = 0
    rehashed_contacts: int = 0
    rehashed_opt_outs: int = 0
    undecryptable: int = 0
    batches: int = 0


@dataclass(frozen=True)
class KeyStatus:
    """Stored phones per key id, and whether the configured secrets can open them."""

    current_key_id: str
    phones_by_key: dict[str, int]
    known_key_ids: tuple[str, ...]

    @property
    def unknown_key_ids(self) -> list[str]:
        return sorted(k for k in self.phones_by_key if k not in self.known_key_ids)

    @property
    def pending(self) -> int:
        """Phones not yet under the current key."""
        return sum(n for k, n in self.phones_by_key.items() if k != self.current_key_id)


def key_status(context: AppContext) -> KeyStatus:
    """Count stored phones per key id (one grouped query)."""
    with context.engine.connect() as conn:
        counts = store.phones_per_key(conn)
    vault = context.vault
    return KeyStatus(vault.key_id, counts, vault.key_ids)


def reencrypt_phones(context: AppContext, *, batch_size: int = 1000) -> RotationReport:
    """Move every stored phone (and its hashes) to the current key; safe to run again."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive; got {batch_size}")
    report = RotationReport()
    after = 0
    while True:
        with context.engine.begin() as conn:
            last = _one_batch(conn, context, after, batch_size, report)
        if last is None:
            return report
        report.batches += 1
        after = last


def _one_batch(
    conn: Connection, context: AppContext, after: int, batch_size: int, report: RotationReport
) -> int | None:
    """Re-encrypt up to `batch_size` units with id > `after`; the last id seen, or None."""
    vault = context.vault
    rows = store.lock_units_to_reencrypt(conn, after=after, key_id=vault.key_id, limit=batch_size)
    if not rows:
        return None
    updates: list[dict[str, object]] = []
    moved: dict[str, str] = {}
    for row in rows:
        try:
            phone = vault.decrypt(row.phone_ciphertext, row.phone_key_id)
        except InvalidTag:
            report.undecryptable += 1
            continue
        new_hash = vault.phone_hash(phone)
        updates.append(
            {
                "row_id": row.id,
                "blob": vault.encrypt(phone),
                "key_id": vault.key_id,
                "new_hash": new_hash,
            }
        )
        if row.phone_hash != new_hash:
            moved[row.phone_hash] = new_hash
    if updates:
        store.update_unit_phones(conn, updates)
        report.reencrypted += len(updates)
    if moved:
        _move_hashes(conn, moved, report)
    return int(rows[-1].id)


def _move_hashes(conn: Connection, moved: dict[str, str], report: RotationReport) -> None:
    """Contacts and opt-outs follow their phone from the old hash to the new one."""
    pairs = [{"old": old, "new": new} for old, new in moved.items()]
    report.rehashed_contacts += store.move_contact_hashes(conn, pairs)
    changed_at = store.opt_out_changes(conn, list(moved) + list(moved.values()))
    for old, new in moved.items():
        stale = changed_at.get(old)
        if stale is None:
            continue
        fresh = changed_at.get(new)
        if fresh is not None:
            # Both exist (the phone acted under both keys): the later decision wins.
            keep_old = stale > fresh
            store.delete_opt_out(conn, new)
            if not keep_old:
                store.delete_opt_out(conn, old)
                continue
        store.rehash_opt_out(conn, old, new)
        report.rehashed_opt_outs += 1


def describe(status: KeyStatus) -> list[str]:
    """Lines for `survey keys status`."""
    counts = Counter(status.phones_by_key)
    lines = [f"current key id: {status.current_key_id}"]
    for key_id in sorted(counts, key=lambda k: (k != status.current_key_id, k)):
        mark = (
            "current"
            if key_id == status.current_key_id
            else ("previous" if key_id in status.known_key_ids else "UNKNOWN: no configured secret")
        )
        lines.append(f"  {key_id or '(none)'}: {counts[key_id]} phones ({mark})")
    lines.append(f"phones to re-encrypt: {status.pending}")
    return lines

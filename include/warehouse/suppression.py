"""The suppression list in the warehouse: keyed hashes of erased emails (see
:mod:`include.suppression`). Every load reads it; erasure adds to it, restoring removes from it."""

from __future__ import annotations

from include.suppression import ErasureKeyError, Suppression, erasure_key, key_id
from include.warehouse.handle import Cursor, Warehouse, now_epoch


def read_suppression(cur: Cursor) -> Suppression:
    """The list, with the key from the environment. An empty list needs no key; a non-empty one
    fails closed without it, or with another key than the one it was written with."""
    cur.execute("SELECT digest, key_id FROM suppressed_emails")
    rows = cur.fetchall()
    if not rows:
        return Suppression()
    key = erasure_key()
    written_with = {r[1] for r in rows}
    if written_with != {key_id(key)}:
        raise ErasureKeyError(
            "CUSTOMER_FEED_ERASURE_KEY is not the key the suppression list was written with: with it, the"
            " people already erased would not be recognised and would come back. Set the original key."
        )
    return Suppression(frozenset(r[0] for r in rows), key)


def load_suppression(wh: Warehouse) -> Suppression:
    with wh.reader() as cur:
        return read_suppression(cur)


def suppress(cur: Cursor, digest: str, key: bytes) -> None:
    cur.execute(
        "INSERT INTO suppressed_emails (digest, key_id, suppressed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (digest, key_id(key), now_epoch()),
    )


def unsuppress(cur: Cursor, digest: str) -> int:
    cur.execute("DELETE FROM suppressed_emails WHERE digest = ?", (digest,))
    return max(cur.rowcount, 0)

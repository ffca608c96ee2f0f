"""Who has been erased: a keyed hash of each erased email, which every extract and load consults.

An erased person must never come back through a later poll or rebuild, yet the warehouse must not
keep their address. So it keeps ``HMAC-SHA256(key, normalised email)`` — with the secret
``CUSTOMER_FEED_ERASURE_KEY`` from the environment, never a bare hash (an email address is easy
to guess, and a bare digest of it is as good as the address). :func:`email_digest` is the one
definition: the suppression list and the customer-id reservation both use it.

This module knows neither the warehouse nor the sources: :class:`Suppression` is a set of digests
that filters staged tables (the warehouse reads it in :mod:`include.warehouse.suppression`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

ERASURE_KEY_ENV = "CUSTOMER_FEED_ERASURE_KEY"
_EMAIL_IN_TEXT = re.compile(r"[^\s\"'<>(),;:\[\]{}\\]+@[^\s\"'<>(),;:\[\]{}\\]+")


class ErasureKeyError(RuntimeError):
    """The erasure secret is missing, or is not the one the suppression list was written with."""


def erasure_key() -> bytes:
    key = os.environ.get(ERASURE_KEY_ENV, "")
    if not key.strip():
        raise ErasureKeyError(
            f"{ERASURE_KEY_ENV} is not set. Erasure keeps a keyed hash (HMAC-SHA256) of each erased address so"
            " that every later load drops it without storing it; set the variable to a long random secret"
            " (e.g. `openssl rand -hex 32`), the same wherever the pipeline and erasure run, and keep it: a"
            " different key cannot recognise the people already erased."
        )
    return key.encode()


def email_digest(email_norm: str, key: bytes) -> str:
    """The keyed hash of a normalised email address (the only one the project uses)."""
    return hmac.new(key, email_norm.encode(), hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A short fingerprint of the key, stored beside the digests so a changed key is noticed
    (it would silently stop recognising everyone erased)."""
    return hmac.new(key, b"customer-feed erasure key", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Suppression:
    """The erased people's digests and the key they were made with."""

    digests: frozenset[str] = frozenset()
    key: bytes = b""

    def __bool__(self) -> bool:
        return bool(self.digests)

    def hits(self, emails: pa.ChunkedArray | pa.Array) -> pa.Array:
        """A boolean mask: which of these normalised emails are suppressed."""
        distinct = [e for e in pc.unique(emails).to_pylist() if e is not None]
        erased = [e for e in distinct if email_digest(e, self.key) in self.digests]
        return pc.fill_null(pc.is_in(emails, value_set=pa.array(erased, pa.string())), False)

    def mentions(self, text: str | None) -> bool:
        """Whether a raw record names a suppressed email anywhere in it (quarantined records keep
        the source's own text, whatever its shape)."""
        # Trimmed and lower-cased as the sources normalise an email (the pattern holds no spaces).
        return any(email_digest(c.lower(), self.key) in self.digests for c in _EMAIL_IN_TEXT.findall(text or ""))

    def drop(
        self, orders: pa.Table, quarantine: pa.Table, profiles: pa.Table | None = None
    ) -> tuple[pa.Table, pa.Table, pa.Table | None, int]:
        """The tables without any record of a suppressed person, and how many records went: their
        orders and profiles by email, quarantined records by the email in their raw text or by
        the source customer id of a suppressed profile or order."""
        if not self:
            return orders, quarantine, profiles, 0
        refs: set[str] = set()
        kept = []
        for table in (orders, profiles):
            if table is None:
                kept.append(None)
                continue
            mask = self.hits(table["email_norm"])
            refs.update(r for r in table.filter(mask)["customer_ref"].to_pylist() if r)
            kept.append(table.filter(pc.invert(mask)))
        mentioned = [
            (ref is not None and ref in refs) or self.mentions(raw)
            for ref, raw in zip(quarantine["customer_ref"].to_pylist(), quarantine["raw"].to_pylist())
        ]
        quarantine_kept = quarantine.filter(pc.invert(pa.array(mentioned, pa.bool_())))
        removed = sum(t.num_rows for t in (orders, quarantine, profiles) if t is not None) - sum(
            t.num_rows for t in (*kept, quarantine_kept) if t is not None
        )
        return kept[0], quarantine_kept, kept[1], removed

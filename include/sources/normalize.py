"""Field-level normalisation shared by every source: customer identity, names, version digests.

Each function either returns the clean value or raises :class:`BadRecord` with a reason a data
engineer can act on; the extract turns that into a quarantine row instead of failing the run.
"""

from __future__ import annotations

import hashlib
import json

from include.money import BadRecord

__all__ = ["BadRecord", "clean_text", "normalize_email", "split_name", "version_hash"]


def normalize_email(raw: object) -> str:
    """The customer identity: trimmed and lower-cased. Raises BadRecord when there is none."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadRecord("missing email address")
    email = raw.strip().lower()
    local, sep, domain = email.rpartition("@")
    if not sep or not local or "." not in domain or any(c.isspace() for c in email):
        raise BadRecord("malformed email address")
    return email


def split_name(full_name: object) -> tuple[str | None, str | None]:
    """'Mary Jane Owen' -> ('Mary', 'Jane Owen'); a single word is a first name."""
    if not isinstance(full_name, str) or not full_name.strip():
        return None, None
    parts = full_name.split()
    return parts[0], (" ".join(parts[1:]) or None)


def clean_text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def version_hash(record: dict) -> str:
    """A digest of a normalised record, stable across processes and Python versions."""
    payload = json.dumps(record, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]

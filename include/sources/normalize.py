"""Field-level normalisation shared by every source: customer identity, names, version digests, and
the strict parsers of flags, statuses and amounts.

Each function either returns the clean value or raises :class:`BadRecord` with a reason a data
engineer can act on; the extract turns that into a quarantine row instead of failing the run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from decimal import Decimal

from include.money import BadRecord, to_minor_units

__all__ = [
    "BadRecord",
    "clean_text",
    "normalize_email",
    "parse_amount",
    "parse_bool",
    "parse_status",
    "split_name",
    "version_hash",
]


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


# -- strict values: one parser per kind of value, shared by both sources ---------------------------

#: The spellings of yes and no that sources are seen to send (JSON booleans, 0/1, and their text
#: forms in any case). Anything else is not understood: the record is quarantined, never guessed.
TRUE_WORDS = frozenset({"true", "1", "yes", "y"})
FALSE_WORDS = frozenset({"false", "0", "no", "n"})
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def parse_bool(raw: object, field: str) -> bool:
    """A yes/no flag: ``true``/``false`` (JSON), ``1``/``0`` (number or text), and the words in
    TRUE_WORDS / FALSE_WORDS in any case, trimmed. A missing flag or any other value raises
    BadRecord: ``"false"`` must never read as consent, nor ``"no"`` as refunded."""
    if isinstance(raw, bool):
        return raw
    if raw is None:
        raise BadRecord(f"missing {field}")
    if isinstance(raw, int):
        if raw in (0, 1):
            return bool(raw)
    elif isinstance(raw, str):
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise BadRecord(f"{field}: not a yes/no value {_shown(raw)}")


def parse_status(raw: object, success_statuses: Iterable[str], field: str = "status") -> tuple[str, bool]:
    """``(status as sent, trimmed; whether it is a paid status)``.

    A status is paid when it equals one of the configured ``success_statuses`` ignoring case and
    surrounding spaces (``complete``, ``COMPLETE `` and ``Complete`` are one status). Any other
    text is a known-unpaid status (pending, cancelled, refunded…). A missing, empty or non-text
    status raises BadRecord."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadRecord(f"missing {field}" if raw in (None, "") else f"{field}: not a status {_shown(raw)}")
    status = raw.strip()
    paid = {s.strip().casefold() for s in success_statuses}
    return status, status.casefold() in paid


def parse_amount(raw: object, currency: str, field: str = "total") -> int:
    """A money amount in major units -> integer minor units of `currency` (``"29.95"`` -> 2995).

    Accepted: a JSON number (not a boolean) or a plain decimal text (``"29.95"``, ``" 30 "``);
    not exponents, thousands separators, currency signs, NaN or infinities. A negative amount
    raises BadRecord: neither source represents a refund as a negative total (GiftPro flags
    ``refunded``, Different Breed uses the ``refunded`` status), so a negative total is a value
    we do not understand, never money spent."""
    if raw is None or raw == "":
        raise BadRecord(f"missing {field}")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise BadRecord(f"unparseable amount {_shown(raw)}")
    if isinstance(raw, str) and not _DECIMAL.fullmatch(raw.strip()):
        raise BadRecord(f"unparseable amount {_shown(raw)}")
    minor = to_minor_units(raw, currency)  # also refuses NaN and infinities
    if Decimal(str(raw).strip()) < 0:
        raise BadRecord(f"negative amount {_shown(raw)} in {field} (refunds are flagged, never negative)")
    return minor


def _shown(raw: object) -> str:
    """A short, printable rendering of a bad value for the quarantine reason."""
    return ascii(raw if isinstance(raw, str | int | float | bool) else type(raw).__name__)[:40]

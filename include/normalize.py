"""Field-level normalisation shared by every source: customer identity, money and names.

Each function either returns the clean value or raises :class:`BadRecord` with a reason a data
engineer can act on; the extract turns that into a quarantine row instead of failing the run.
"""

from __future__ import annotations

import hashlib
import json
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from babel.numbers import get_currency_precision, list_currencies

_ISO_CURRENCIES = frozenset(list_currencies())


class BadRecord(ValueError):
    """A source record that cannot be used as it is; the message is the quarantine reason."""


def normalize_email(raw: object) -> str:
    """The customer identity: trimmed and lower-cased. Raises BadRecord when there is none."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadRecord("missing email address")
    email = raw.strip().lower()
    local, sep, domain = email.rpartition("@")
    if not sep or not local or "." not in domain or any(c.isspace() for c in email):
        raise BadRecord("malformed email address")
    return email


def normalize_currency(raw: object) -> str:
    code = raw.strip().upper() if isinstance(raw, str) else ""
    if code not in _ISO_CURRENCIES:
        raise BadRecord(f"unknown currency {str(raw)[:12]!r}")
    return code


def to_minor_units(amount: object, currency: str) -> int:
    """A decimal amount in major units (29.95) as an integer of minor units (2995).

    Parsed through Decimal from its text, never through binary floating point arithmetic, so the
    pennies are exact; an amount with more decimals than the currency has is rounded half-even.
    """
    if isinstance(amount, bool) or amount is None:
        raise BadRecord(f"unparseable amount {amount!r}")
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise BadRecord(f"unparseable amount {str(amount)[:20]!r}") from None
    if not value.is_finite():
        raise BadRecord(f"unparseable amount {str(amount)[:20]!r}")
    exponent = get_currency_precision(currency)
    return int((value.scaleb(exponent)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def minor_to_major(minor: int, currency: str) -> float:
    """Minor units back to the number the feed shows: 2995 GBP -> 29.95 (exact in JSON)."""
    exponent = get_currency_precision(currency)
    return minor if exponent == 0 else round(minor / 10**exponent, exponent)


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

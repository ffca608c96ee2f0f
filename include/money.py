"""Money and currencies: ISO 4217 codes, and amounts as integer minor units.

Shared by the sources (parsing amounts), the configuration (a feed's currency) and the feed
service (showing amounts); it imports nothing of the project.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from babel.numbers import get_currency_precision, list_currencies

_ISO_CURRENCIES = frozenset(list_currencies())


class BadRecord(ValueError):
    """A source record that cannot be used as it is; the message is the quarantine reason."""


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

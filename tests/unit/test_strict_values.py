"""The strict parsers of flags, statuses and amounts (include/sources/normalize.py), and both
sources' normalisers using them: a value not understood is quarantined with its reason, never
read as its Python truthiness."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from include.config import DifferentBreedSettings, GiftProSettings
from include.sources import differentbreed, giftpro
from include.sources.normalize import (
    FALSE_WORDS,
    TRUE_WORDS,
    BadRecord,
    parse_amount,
    parse_bool,
    parse_status,
)

GIFTPRO = {
    "orderID": 7,
    "domainID": 3521,
    "dateCreated": "2026-05-01 10:00:00",
    "changed": "2026-05-01 10:00:00",
    "emailAddress": "ann@example.com",
    "currencyCode": "GBP",
    "total": 25.0,
    "status": "Complete",
    "customerName": "Ann Lee",
    "marketingOptedIn": True,
    "refunded": False,
}
DB_ORDER = {
    "order_id": "ord_1",
    "cust_id": "cus_1",
    "created_at": "2026-05-01T10:00:00Z",
    "updated_at": "2026-05-01T10:00:00Z",
    "status": "paid",
    "total": 35.0,
    "currency": "GBP",
    "marketing_opt_in": True,
}
DB_CUSTOMER = {"email_norm": "ann@example.com", "customer_ref": "cus_1"}


@pytest.mark.parametrize(
    "raw, expected",
    [(True, True), (False, False), (1, True), (0, False), ("true", True), ("FALSE", False), (" 0 ", False)]
    + [("1", True), ("no", False), ("Yes", True), ("n", False), ("Y", True)],
)
def test_flags_in_every_spelling_sources_send(raw, expected):
    assert parse_bool(raw, "flag") is expected


@pytest.mark.parametrize("raw", [None, "", "maybe", "2", 2, -1, 1.0, 0.0, "truee", "off", [], {}, "  "])
def test_a_flag_not_understood_is_a_bad_record_naming_the_field(raw):
    with pytest.raises(BadRecord, match="refunded"):
        parse_bool(raw, "refunded")


@given(st.sampled_from(sorted(TRUE_WORDS | FALSE_WORDS)), st.text(" \t", max_size=3), st.booleans())
def test_flag_words_read_the_same_in_any_case_and_padding(word, pad, upper):
    text = pad + (word.upper() if upper else word) + pad
    assert parse_bool(text, "f") is (word in TRUE_WORDS)


@given(st.text(max_size=12))
def test_any_text_is_either_a_known_word_or_refused(text):
    try:
        value = parse_bool(text, "f")
    except BadRecord:
        assert text.strip().lower() not in TRUE_WORDS | FALSE_WORDS
    else:
        assert text.strip().lower() in (TRUE_WORDS if value else FALSE_WORDS)


@pytest.mark.parametrize(
    "raw, paid",
    [("Complete", True), ("complete", True), ("COMPLETE ", True), (" cOmPlEtE", True), ("Pending", False)]
    + [("Completed", False), ("Chargeback", False)],
)
def test_statuses_match_the_configured_ones_ignoring_case(raw, paid):
    assert parse_status(raw, ("Complete",)) == (raw.strip(), paid)


@pytest.mark.parametrize("raw", [None, "", "   ", 1, True, ["Complete"]])
def test_a_missing_or_non_text_status_is_a_bad_record(raw):
    with pytest.raises(BadRecord, match="status"):
        parse_status(raw, ("Complete",))


@given(st.sampled_from(["paid", "Complete", "completed"]), st.lists(st.booleans(), min_size=1, max_size=12))
def test_status_case_never_changes_the_answer(status, cases):
    text = "".join(c.upper() if up else c.lower() for c, up in zip(status, cases * 12))
    assert parse_status(text, ("Paid", "complete", "Completed"))[1] is True


@pytest.mark.parametrize(
    "raw, minor",
    [(25, 2500), (25.5, 2550), ("25.50", 2550), (" 30 ", 3000), ("0", 0), ("-0", 0), (Decimal("1.99"), 199)],
)
def test_amounts(raw, minor):
    assert parse_amount(raw, "GBP") == minor


@pytest.mark.parametrize(
    "raw, reason",
    [(-5, "negative"), ("-0.01", "negative"), (-0.004, "negative"), ("n/a", "unparseable")]
    + [("1e3", "unparseable"), ("1,000.00", "unparseable"), ("£10", "unparseable"), ("NaN", "unparseable")]
    + [(float("inf"), "unparseable"), (True, "unparseable"), (None, "missing"), ("", "missing"), ([], "unparseable")]
    + [("٣", "unparseable")],
)
def test_amounts_not_understood_or_negative_are_bad_records(raw, reason):
    with pytest.raises(BadRecord, match=reason):
        parse_amount(raw, "GBP")


@given(st.decimals(min_value=0, max_value=10**9, places=2))
def test_non_negative_amounts_as_text_and_number_agree_to_the_penny(value):
    assert parse_amount(str(value), "GBP") == int(value * 100)
    assert parse_amount(float(value), "GBP") == int(value * 100)


@given(st.decimals(max_value=Decimal("-0.01"), min_value=-(10**9), places=2))
def test_every_negative_amount_is_refused(value):
    with pytest.raises(BadRecord, match="negative"):
        parse_amount(str(value), "GBP")
    with pytest.raises(BadRecord, match="negative"):
        parse_amount(float(value), "GBP")


# -- through the normalisers of both sources


@pytest.mark.parametrize("flag", ["false", "0", 0, "no", "FALSE"])
def test_giftpro_consent_written_as_text_false_is_no_consent(flag):
    row = giftpro.normalize_order({**GIFTPRO, "marketingOptedIn": flag}, GiftProSettings(), "GBP")
    assert row["marketing_opt_in"] is False


@pytest.mark.parametrize("flag", ["no", "0", "false", 0])
def test_giftpro_refunded_no_keeps_a_paid_order(flag):
    row = giftpro.normalize_order({**GIFTPRO, "refunded": flag}, GiftProSettings(), "GBP")
    assert (row["successful"], row["total_minor"]) == (True, 2500)


@pytest.mark.parametrize("status", ["complete", "COMPLETE", " Complete "])
def test_giftpro_status_in_another_case_counts(status):
    row = giftpro.normalize_order({**GIFTPRO, "status": status}, GiftProSettings(), "GBP")
    assert (row["successful"], row["total_minor"]) == (True, 2500)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"total": -25}, "negative"),
        ({"marketingOptedIn": "maybe"}, "marketingOptedIn"),
        ({"refunded": "unknown"}, "refunded"),
        ({"status": None}, "status"),
        ({"marketingOptedIn": None}, "missing marketingOptedIn"),
    ],
)
def test_giftpro_values_not_understood_are_bad_records(change, reason):
    with pytest.raises(BadRecord, match=reason):
        giftpro.normalize_order({**GIFTPRO, **change}, GiftProSettings(), "GBP")


def test_giftpro_refunded_and_consent_are_checked_on_unpaid_orders_too():
    with pytest.raises(BadRecord, match="refunded"):
        giftpro.normalize_order({**GIFTPRO, "status": "Pending", "refunded": "?"}, GiftProSettings(), "GBP")


@pytest.mark.parametrize(
    "change, successful, consent",
    [
        ({"marketing_opt_in": "false"}, True, False),
        ({"marketing_opt_in": "0"}, True, False),
        ({"status": "Paid"}, True, True),
        ({"status": "REFUNDED"}, False, True),
        ({"total": "35.00"}, True, True),
    ],
)
def test_differentbreed_odd_values(change, successful, consent):
    row = differentbreed.normalize_order(
        {**DB_ORDER, **change}, DB_CUSTOMER, "p", DifferentBreedSettings(success_statuses=("paid",)), "GBP"
    )
    assert (row["successful"], row["marketing_opt_in"]) == (successful, consent)


@pytest.mark.parametrize("change", [{"total": -35}, {"marketing_opt_in": "sure"}, {"status": ""}])
def test_differentbreed_values_not_understood_are_bad_records(change):
    with pytest.raises(BadRecord):
        differentbreed.normalize_order(
            {**DB_ORDER, **change}, DB_CUSTOMER, "p", DifferentBreedSettings(success_statuses=("paid",)), "GBP"
        )

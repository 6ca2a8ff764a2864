"""Realistic personal data for ticket text: valid cards and IBANs, phones in national formats.

Redaction code downstream is scored against these, so every value is *valid* (Luhn for cards, ISO
13616 mod-97 for IBANs) and printed the way people paste them: with spaces or dashes, compact or
grouped.
"""

from __future__ import annotations

import random
import string

# country -> BBAN layout: "n" digit, "a" upper-case letter, "c" alphanumeric
IBAN_LAYOUTS = {
    "DE": "n" * 18,
    "GB": "aaaa" + "n" * 14,
    "FR": "n" * 10 + "c" * 11 + "nn",
    "NL": "aaaa" + "n" * 10,
    "ES": "n" * 20,
    "IT": "a" + "n" * 10 + "c" * 12,
}


def luhn_check_digit(partial: str) -> str:
    """The digit that makes `partial + digit` pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(partial)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def card_number(rng: random.Random) -> str:
    """A Luhn-valid Visa, Mastercard or Amex number, grouped by spaces or dashes, or compact."""
    scheme = rng.choice(("visa", "visa", "mastercard", "mastercard", "amex"))
    if scheme == "amex":
        body = rng.choice(("34", "37")) + "".join(rng.choices(string.digits, k=12))
        digits = body + luhn_check_digit(body)
        groups = [digits[:4], digits[4:10], digits[10:]]
    else:
        prefix = "4" if scheme == "visa" else str(rng.randint(51, 55))
        body = prefix + "".join(rng.choices(string.digits, k=15 - len(prefix)))
        digits = body + luhn_check_digit(body)
        groups = [digits[i : i + 4] for i in range(0, 16, 4)]
    separator = rng.choice((" ", " ", "-", ""))
    return separator.join(groups)


def _iban_digits(text: str) -> int:
    return int("".join(str(int(char, 36)) for char in text))


def iban(rng: random.Random, country: str | None = None) -> str:
    """A mod-97-valid IBAN, printed in groups of four (the paper format) or compact."""
    country = country or rng.choice(tuple(IBAN_LAYOUTS))
    alphabet = {
        "n": string.digits,
        "a": string.ascii_uppercase,
        "c": string.ascii_uppercase + string.digits,
    }
    bban = "".join(rng.choice(alphabet[kind]) for kind in IBAN_LAYOUTS[country])
    check = 98 - _iban_digits(bban + country + "00") % 97
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.7:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


def phone_number(rng: random.Random, country: str) -> str:
    """A phone number in one of the formats people use in that country, or E.164."""
    if country in ("US", "CA"):
        area = rng.choice(("206", "415", "503", "312", "617", "512", "416", "613"))
        mid, last = f"{rng.randint(200, 989)}", f"{rng.randint(0, 9999):04d}"
        return rng.choice(
            (
                f"({area}) {mid}-{last}",
                f"{area}-{mid}-{last}",
                f"+1 {area} {mid} {last}",
                f"+1{area}{mid}{last}",
            )
        )
    if country == "GB":
        if rng.random() < 0.5:
            local = f"{rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
            return rng.choice((f"+44 20 {local}", f"020 {local}"))
        mobile = f"7{rng.randint(100, 999)} {rng.randint(100000, 999999)}"
        return rng.choice((f"+44 {mobile}", f"0{mobile}", "+44" + mobile.replace(" ", "")))
    if country == "DE":
        area = rng.choice(("30", "40", "89", "221", "69"))
        number = str(rng.randint(1000000, 99999999))
        return rng.choice(
            (
                f"+49 {area} {number}",
                f"0{area} {number}",
                f"+49 (0){area} {number}",
                f"+49{area}{number}",
            )
        )
    area_code = {"NL": "+31 20", "FR": "+33 1"}.get(country, "+31 20")
    return f"{area_code} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"


def email_address(rng: random.Random, first: str, last: str, domain: str) -> str:
    """A work address at the customer's domain, or now and then a personal one."""
    first_l, last_l = first.lower(), last.lower()
    if rng.random() < 0.15:
        user = rng.choice(
            (
                f"{first_l}.{last_l}{rng.randint(1, 99)}",
                f"{first_l[0]}{last_l}{rng.randint(70, 99)}",
            )
        )
        return f"{user}@{rng.choice(('gmail.com', 'outlook.com', 'yahoo.co.uk', 'web.de'))}"
    user = rng.choice(
        (f"{first_l}.{last_l}", f"{first_l[0]}{last_l}", f"{first_l}_{last_l}", first_l)
    )
    return f"{user}@{domain}"

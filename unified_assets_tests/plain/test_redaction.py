"""PII redaction: recall is 1.0 and precision stays above a floor on the labelled corpus.

The corpus (data/pii_corpus.jsonl) labels every e-mail, phone, card and IBAN in realistic
support-ticket text, plus near-misses that must survive untouched. The check-digit helpers in
this file are written independently of unified_assets.redaction, so the corpus values and the
randomly generated ones are validated by a second implementation, not by the code under test.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
import re
import string
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from unified_assets.redaction import (
    IBAN_LENGTHS,
    PLACEHOLDERS,
    PiiMatch,
    _may_hold_pii,  # the pre-check's soundness is tested directly
    find_pii,
    iban_valid,
    luhn_valid,
    redact,
    redact_counting,
    redact_record,
)

CORPUS_PATH = Path(__file__).parents[1] / "data" / "pii_corpus.jsonl"
KINDS = ("email", "phone", "card", "iban")
PRECISION_FLOOR = 0.95
MIN_CORPUS_LINES = 150
MIN_LABELS_PER_KIND = 30

# --------------------------------------------------------------------------------------------
# Reference check-digit implementations and generators (independent of the module under test)
# --------------------------------------------------------------------------------------------


def reference_luhn_check_digit(payload: str) -> str:
    """The digit that makes payload + digit pass Luhn (doubling from the right of payload)."""
    total = 0
    for position, char in enumerate(reversed(payload)):
        doubled = int(char) * (2 if position % 2 == 0 else 1)
        total += doubled // 10 + doubled % 10
    return str(-total % 10)


def reference_luhn_ok(number: str) -> bool:
    digits = "".join(char for char in number if char.isdigit())
    return reference_luhn_check_digit(digits[:-1]) == digits[-1]


def reference_iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 check digits: 98 - (BBAN + country + "00" as base-36 digits) mod 97."""
    numeric = "".join(str(int(char, 36)) for char in bban + country + "00")
    return f"{98 - int(numeric) % 97:02d}"


def reference_iban_ok(iban: str) -> bool:
    compact = iban.replace(" ", "").upper()
    return reference_iban_check_digits(compact[:2], compact[4:]) == compact[2:4]


# Issuer prefixes from the schemes' published test ranges, with the layouts each prints in.
TEST_CARD_RANGES: tuple[tuple[str, int, tuple[tuple[int, ...], ...]], ...] = (
    ("400000", 16, ((16,), (4, 4, 4, 4))),
    ("400000", 19, ((19,), (4, 4, 4, 4, 3))),
    ("400000", 13, ((13,),)),
    ("510510", 16, ((16,), (4, 4, 4, 4))),
    ("222300", 16, ((16,), (4, 4, 4, 4))),
    ("601100", 16, ((16,), (4, 4, 4, 4))),
    ("353011", 16, ((16,), (4, 4, 4, 4))),
    ("620000", 19, ((19,), (4, 4, 4, 4, 3))),
    ("3400", 15, ((15,), (4, 6, 5))),
    ("3700", 15, ((15,), (4, 6, 5))),
    ("3056", 14, ((14,), (4, 6, 4))),
)

# Letters (a), digits (n) in each required country's BBAN, in order.
BBAN_SHAPES = {
    "DE": "n18", "GB": "a4 n14", "FR": "n23", "NL": "a4 n10", "ES": "n20", "IT": "a1 n22",
    "BE": "n12", "CH": "n17", "AT": "n16", "IE": "a4 n14", "PL": "n24", "SE": "n20",
    "DK": "n14", "NO": "n11",
}  # fmt: skip

# Published example IBANs (bank documentation / the SWIFT registry), not anyone's account.
REGISTRY_EXAMPLE_IBANS = {
    "DE": "DE89370400440532013000",
    "GB": "GB29NWBK60161331926819",
    "FR": "FR1420041010050500013M02606",
    "NL": "NL91ABNA0417164300",
    "ES": "ES9121000418450200051332",
    "IT": "IT60X0542811101000000123456",
    "BE": "BE68539007547034",
    "CH": "CH9300762011623852957",
    "AT": "AT611904300234573201",
    "IE": "IE29AIBK93115212345678",
    "PL": "PL61109010140000071219812874",
    "SE": "SE4550000000058398257466",
    "DK": "DK5000400440116243",
    "NO": "NO9386011117947",
}


def random_card(rng: random.Random) -> str:
    """A Luhn-valid test-range card number, grouped as printed with random space/dash gaps."""
    prefix, length, layouts = rng.choice(TEST_CARD_RANGES)
    payload = prefix + "".join(rng.choices(string.digits, k=length - len(prefix) - 1))
    return group_digits(payload + reference_luhn_check_digit(payload), rng.choice(layouts), rng)


def group_digits(number: str, layout: tuple[int, ...], rng: random.Random | None) -> str:
    """Split number by layout, joined by random spaces/dashes (always spaces without rng)."""
    groups, position = [], 0
    for size in layout:
        groups.append(number[position : position + size])
        position += size
    text = groups[0]
    for group in groups[1:]:
        text += (rng.choice(" -") if rng else " ") + group
    return text


def random_bban(country: str, rng: random.Random) -> str:
    pieces = []
    for shape in BBAN_SHAPES[country].split():
        alphabet = string.ascii_uppercase if shape[0] == "a" else string.digits
        pieces.append("".join(rng.choices(alphabet, k=int(shape[1:]))))
    return "".join(pieces)


def random_iban(rng: random.Random) -> str:
    """A mod-97-valid IBAN for a required country: compact or spaced in fours, any case."""
    country = rng.choice(sorted(BBAN_SHAPES))
    bban = random_bban(country, rng)
    iban = country + reference_iban_check_digits(country, bban) + bban
    if rng.random() < 0.5:
        iban = spaced_in_fours(iban)
    return iban.lower() if rng.random() < 0.3 else iban


def spaced_in_fours(iban: str) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def random_email(rng: random.Random) -> str:
    """Plus-addressing, dots, hyphens, subdomains and mixed case on example.* domains."""

    def atom() -> str:
        return "".join(rng.choices(string.ascii_lowercase + string.digits, k=rng.randint(1, 8)))

    local = ".".join(atom() for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.3:
        local += "+" + atom()
    if rng.random() < 0.3:
        local = local.replace(".", "-", 1)
    subdomains = "".join(atom() + "." for _ in range(rng.randint(0, 2)))
    address = f"{local}@{subdomains}example.{rng.choice(['com', 'org', 'net'])}"
    return address.upper() if rng.random() < 0.2 else address


def random_phone(rng: random.Random) -> str:
    """Fictional numbers (NANP 555-01xx, Ofcom drama ranges, DE examples) in every format."""
    nn = f"{rng.randint(0, 99):02d}"
    nnn = f"{rng.randint(0, 999):03d}"
    area = rng.choice(["212", "415", "646", "800"])
    phone = rng.choice(
        [
            f"({area}) 555-01{nn}",
            f"{area}-555-01{nn}",
            f"{area}.555.01{nn}",
            f"1-{area}-555-01{nn}",
            f"+1 {area} 555 01{nn}",
            f"+1{area}55501{nn}",
            f"020 7946 0{nnn}",
            f"+44 20 7946 0{nnn}",
            f"+44 (0)20 7946 0{nnn}",
            f"07700 900{nnn}",
            f"+44 7700 900{nnn}",
            f"0161 496 0{nnn}",
            f"030 9018{nn}",
            f"+49 30 9018{nn}",
            f"0151 234567{nn}",
            f"+49 151 234567{nn}",
        ]
    )
    return phone + rng.choice(["", "", "", f" ext. {nn}", f" x{nnn}"])


# Text that must never be redacted, however it is shuffled around a value.
FILLER_WORDS = (
    "refund", "order", "late", "delivery", "broken", "please", "Grüße", "naïve", "日本語", "😀",
    "#48213", "INV-10423", "PO-2026-00042", "AB-1234", "2026-11-01", "2026-11-01T10:15:00Z",
    "10:15", "$1,234.56", "1.234,56", "EUR", "v2.3.1", "192.168.100.200", "250", "units",
)  # fmt: skip
LEFT_WRAPPERS = (" ", " (", " <", ": ", "\n", " «", ' "', " [")
RIGHT_WRAPPERS = (" ", ". ", ", ", ") ", "> ", "!\n", "» ", '" ', "] ", "; ")


def embed(value: str, rng: random.Random) -> tuple[str, int]:
    """value inside random filler; returns the text and the value's offset.

    The words touching the value are plain words: a number right next to a card or phone,
    with only a space between, is genuinely ambiguous (see docs/redaction.md).
    """
    before = " ".join([*rng.choices(FILLER_WORDS, k=rng.randint(0, 6)), "see"])
    after = " ".join(["thanks", *rng.choices(FILLER_WORDS, k=rng.randint(0, 6))])
    head = before + rng.choice(LEFT_WRAPPERS)
    return head + value + rng.choice(RIGHT_WRAPPERS) + after, len(head)


# --------------------------------------------------------------------------------------------
# Corpus and scoring
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Labelled:
    text: str
    pii: tuple[tuple[str, str], ...]  # (kind, value)

    def spans(self) -> set[tuple[str, int, int]]:
        """Every occurrence of every labelled value, as (kind, start, end)."""
        found = set()
        for kind, value in self.pii:
            start = self.text.find(value)
            while start != -1:
                found.add((kind, start, start + len(value)))
                start = self.text.find(value, start + 1)
        return found


@cache
def corpus() -> tuple[Labelled, ...]:
    lines = CORPUS_PATH.read_text(encoding="utf-8").splitlines()
    rows = (json.loads(line) for line in lines if line.strip())
    return tuple(
        Labelled(row["text"], tuple((item["kind"], item["value"]) for item in row["pii"]))
        for row in rows
    )


@dataclass
class Score:
    true_positives: int = 0
    false_positives: list[str] = field(default_factory=list)
    false_negatives: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        found = self.true_positives + len(self.false_positives)
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        labelled = self.true_positives + len(self.false_negatives)
        return self.true_positives / labelled if labelled else 1.0


def score(lines: tuple[Labelled, ...]) -> dict[str, Score]:
    """Exact-span scoring: a find counts only if kind, start and end all equal a label's."""
    scores = {kind: Score() for kind in KINDS}
    for line in lines:
        expected = line.spans()
        found = {(match.kind, match.start, match.end) for match in find_pii(line.text)}
        for kind, _start, _end in found & expected:
            scores[kind].true_positives += 1
        for kind, start, end in found - expected:
            scores[kind].false_positives.append(repr(line.text[start:end]))
        for kind, start, end in expected - found:
            scores[kind].false_negatives.append(repr(line.text[start:end]))
    return scores


def score_table(scores: dict[str, Score]) -> str:
    rows = [f"{'kind':<6} {'labelled':>8} {'found':>6} {'precision':>9} {'recall':>7}"]
    for kind, kind_score in scores.items():
        labelled = kind_score.true_positives + len(kind_score.false_negatives)
        found = kind_score.true_positives + len(kind_score.false_positives)
        rows.append(
            f"{kind:<6} {labelled:>8} {found:>6} "
            f"{kind_score.precision:>9.3f} {kind_score.recall:>7.3f}"
        )
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------
# Corpus integrity
# --------------------------------------------------------------------------------------------


def test_corpus_is_large_and_covers_every_kind_and_near_misses():
    lines = corpus()
    labels = Counter(kind for line in lines for kind, _ in line.pii)
    assert len(lines) >= MIN_CORPUS_LINES
    assert set(labels) == set(KINDS)
    assert min(labels.values()) >= MIN_LABELS_PER_KIND, labels
    assert sum(1 for line in lines if not line.pii) >= 40, "too few near-miss-only lines"


def test_corpus_labels_are_present_and_checksums_hold_by_reference_implementation():
    for line in corpus():
        for kind, value in line.pii:
            assert kind in KINDS, (kind, line.text)
            assert value in line.text, (value, line.text)
            if kind == "card":
                assert reference_luhn_ok(value), value
            if kind == "iban":
                assert reference_iban_ok(value), value
            if kind == "email":
                assert "example" in value.lower().split("@")[1].split("."), value


# --------------------------------------------------------------------------------------------
# Recall and precision on the corpus
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_recall_is_total_on_the_corpus(kind):
    kind_score = score(corpus())[kind]
    assert kind_score.recall == 1.0, f"missed {kind}: {kind_score.false_negatives}"


@pytest.mark.parametrize("kind", KINDS)
def test_precision_stays_above_the_floor_on_the_corpus(kind):
    scores = score(corpus())
    print("\n" + score_table(scores))
    kind_score = scores[kind]
    assert kind_score.precision >= PRECISION_FLOOR, f"spurious {kind}: {kind_score.false_positives}"


def test_redacted_corpus_keeps_no_labelled_value_and_one_placeholder_per_occurrence():
    for line in corpus():
        redacted = redact(line.text)
        for _kind, value in line.pii:
            assert value not in redacted, (value, redacted)
        expected = Counter(kind for kind, _start, _end in line.spans())
        for kind in KINDS:
            assert redacted.count(PLACEHOLDERS[kind]) == expected[kind], (kind, redacted)


def test_near_miss_lines_come_back_unchanged():
    near_misses = [line.text for line in corpus() if not line.pii]
    assert near_misses
    for text in near_misses:
        assert redact(text) == text


# --------------------------------------------------------------------------------------------
# The formats the brief names, one by one
# --------------------------------------------------------------------------------------------

LISTED_FORMATS = [
    ("email", "jane.doe+orders@example.com"),
    ("email", "first.last@mail.support.example.co.uk"),
    ("email", "Ops-Team@EXAMPLE.ORG"),
    ("phone", "+14155552671"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "+49 30 901820"),
    ("phone", "(415) 555-2671"),
    ("phone", "415-555-2671"),
    ("phone", "415.555.2671"),
    ("phone", "1-800-555-0199"),
    ("phone", "020 7946 0958"),
    ("phone", "07700 900123"),
    ("phone", "030 901820"),
    ("phone", "0151 23456789"),
    ("phone", "(415) 555-2671 ext. 123"),
    ("card", "4111 1111 1111 1111"),
    ("card", "4111-1111-1111-1111"),
    ("card", "4111111111111111"),
    ("card", "3782 822463 10005"),
    ("card", "3056 930902 5904"),
    ("card", "6011-1111 1111-1117"),
    ("card", "4222222222222"),
    *[("iban", iban) for iban in REGISTRY_EXAMPLE_IBANS.values()],
    *[("iban", spaced_in_fours(iban)) for iban in REGISTRY_EXAMPLE_IBANS.values()],
    ("iban", "de89 3704 0044 0532 0130 00"),
    ("iban", "gb29nwbk60161331926819"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "value"), LISTED_FORMATS)
@pytest.mark.parametrize("template", ["{}", "Contact: {}.", "({}),", "<{}>\n"])
def test_each_listed_format_is_found_whole_and_with_its_kind(kind, value, template):
    text = template.format(value)
    start = text.index(value)
    assert find_pii(text) == [PiiMatch(kind, start, start + len(value))]


MUST_NOT_MATCH = [
    "2026-11-01",
    "2026-11-01T10:15:00Z",
    "2026-11-01T10:15:00+01:00",
    "2026-11-01 10:15:00",
    "01.11.2026",
    "11/01/2026",
    "10:15",
    "INV-10423",
    "PO-2026-00042",
    "#48213",
    "AB-1234",
    "$1,234.56",
    "1.234,56 EUR",
    "12,345,678.90",
    "qty 250 x 12",
    "ticket 4821345",
    "v2.3.1",
    "192.168.100.200",
    "10.0.0.1",
    "1Z999AA10123456784",
    "9400 1000 0000 0000 0000 00",
    "4111 1111 1111 1112",
    "4111111111111112",
    "DE89 3704 0044 0532 0130 01",
    "DE00 3704 0044 0532 0130 00",
    "XX89 3704 0044 0532 0130 00",
    "490154203237518",
    "5901234123457",
    "123-456-7890",
    "0123 4567 8901 2345 6789",
    "john.doe at example dot com",
]


@pytest.mark.parametrize("text", MUST_NOT_MATCH)
def test_near_misses_are_not_redacted(text):
    assert find_pii(text) == []
    assert find_pii(f"Re: {text}, thanks") == []


def test_a_card_layout_inside_a_longer_spaced_number_is_not_a_card():
    payload = "100000000000000"
    window = group_digits(payload + reference_luhn_check_digit(payload), (4, 4, 4, 4), rng=None)
    assert luhn_valid(window.replace(" ", ""))
    tracking = f"9400 {window} 55"  # a 22-digit tracking number printed in fours
    assert find_pii(f"Tracking {tracking} shows delivered.") == []


@pytest.mark.parametrize("tail", ["2026-11-01", "12/28", "123", "1234"])
def test_a_card_followed_by_a_date_or_short_number_is_still_a_card(tail):
    text = f"card 4111 1111 1111 1111 {tail} thanks"
    assert find_pii(text) == [PiiMatch("card", 5, 24)]


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("AT61 1904 3002 3457 3201 CH93 0076 2011 6238 5295 7", ["iban", "iban"]),
        ("XX12 DE89 3704 0044 0532 0130 00", ["iban"]),
        ("415-555-0190 415-555-0191 415-555-0192", ["phone", "phone", "phone"]),
        ("+44 20 7946 0958 4111 1111 1111 1111", ["phone", "card"]),
        ("a@example.com,b@example.org", ["email", "email"]),
        ("4111111111111111/5555555555554444", ["card", "card"]),
    ],
)
def test_values_glued_to_each_other_are_each_found(text, kinds):
    assert [match.kind for match in find_pii(text)] == kinds


def test_card_and_iban_win_over_phone():
    text = "card 4111 1111 1111 1111 iban DE89 3704 0044 0532 0130 00 +49 30 901820"
    assert [match.kind for match in find_pii(text)] == ["card", "iban", "phone"]


# --------------------------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["4111111111111111", "378282246310005", "30569309025904", "6011000990139424"]
)
def test_luhn_accepts_valid_numbers(number):
    assert luhn_valid(number)


@pytest.mark.parametrize(
    "number", ["4111111111111112", "378282246310006", "1234567890123456", "", "4111 1111", "٤١"]
)
def test_luhn_rejects_wrong_check_digits_and_non_digits(number):
    assert not luhn_valid(number)


def test_luhn_agrees_with_the_reference_on_random_numbers():
    rng = random.Random(13)
    for _ in range(2000):
        number = "".join(rng.choices(string.digits, k=rng.randint(2, 19)))
        assert luhn_valid(number) == reference_luhn_ok(number), number


@pytest.mark.parametrize("iban", sorted(REGISTRY_EXAMPLE_IBANS.values()))
def test_mod97_accepts_registry_examples_in_any_case(iban):
    assert iban_valid(iban)
    assert iban_valid(iban.lower())


@pytest.mark.parametrize(
    "iban",
    [
        "DE89370400440532013001",  # wrong check
        "DE8937040044053201300",  # one character short
        "DE893704004405320130000",  # one character long
        "XX89370400440532013000",  # no such country
        "DE89 3704 0044 0532 0130 00",  # spaces belong to the caller
        "DEAB370400440532013000",  # letters as check digits
    ],
)
def test_mod97_rejects_malformed_ibans(iban):
    assert not iban_valid(iban)


def test_mod97_rejects_check_digits_99_that_alias_a_valid_02():
    rng = random.Random(97)
    bban = random_bban("DE", rng)
    while reference_iban_check_digits("DE", bban) != "02":
        bban = random_bban("DE", rng)
    assert iban_valid("DE02" + bban)
    alias = "DE99" + bban
    assert int("".join(str(int(c, 36)) for c in alias[4:] + alias[:4])) % 97 == 1
    assert not iban_valid(alias)


def test_iban_lengths_cover_the_required_countries():
    for country, example in REGISTRY_EXAMPLE_IBANS.items():
        assert IBAN_LENGTHS[country] == len(example)


# --------------------------------------------------------------------------------------------
# Property-style tests with seeded random values
# --------------------------------------------------------------------------------------------

GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "card": random_card,
    "iban": random_iban,
    "email": random_email,
    "phone": random_phone,
}


@pytest.mark.parametrize("kind", KINDS)
def test_random_values_embedded_in_random_text_are_found_exactly(kind):
    rng = random.Random(f"embed-{kind}")
    for _ in range(400):
        value = GENERATORS[kind](rng)
        text, start = embed(value, rng)
        assert find_pii(text) == [PiiMatch(kind, start, start + len(value))], text
        assert value not in redact(text)


def test_random_cards_with_a_wrong_check_digit_are_left_alone():
    """Except 4-4-4-4-3: its first 16 digits form a layout of their own, and the 1 in 10 that
    pass Luhn are rightly read as a card followed by three digits (a CVV, say)."""
    rng = random.Random("bad-card")
    for _ in range(400):
        card = random_card(rng)
        while len(re.split(r"[ -]", card)) == 5:
            card = random_card(rng)
        wrong = card[:-1] + str((int(card[-1]) + rng.randint(1, 9)) % 10)
        text, _ = embed(wrong, rng)
        assert find_pii(text) == [], text


def test_random_ibans_with_a_changed_character_are_left_alone():
    rng = random.Random("bad-iban")
    for _ in range(400):
        iban = random_iban(rng)
        position = rng.choice([i for i, char in enumerate(iban) if char.isdigit() and i > 1])
        wrong = iban[:position] + str((int(iban[position]) + 1) % 10) + iban[position + 1 :]
        text, _ = embed(wrong, rng)
        assert find_pii(text) == [], text


def random_near_miss(rng: random.Random) -> str:
    """A random date, timestamp, time, amount, IP, version, order/PO/SKU/ticket id, quantity,
    tracking number or NANP-invalid "phone": everything the brief says is not PII."""
    year, month, day = rng.randint(1990, 2039), rng.randint(1, 12), rng.randint(1, 28)
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    amount, cents = rng.randint(0, 99_999_999), rng.randint(0, 99)
    european_amount = f"{amount:,}".replace(",", ".")

    def digits(count: int) -> str:
        return "".join(rng.choices(string.digits, k=count))

    return rng.choice(
        [
            f"{year}-{month:02d}-{day:02d}",
            f"{year}-{month:02d}-{day:02d}T{clock}Z",
            f"{year}-{month:02d}-{day:02d}T{clock}+{rng.randint(0, 12):02d}:00",
            f"{year}-{month:02d}-{day:02d} {clock}",
            f"{day:02d}.{month:02d}.{year}",
            f"{month:02d}/{day:02d}/{year}",
            clock[:5],
            f"${amount:,}.{cents:02d}",
            f"{european_amount},{cents:02d} EUR",
            f"£ {amount:,}.{cents:02d}",
            ".".join(str(rng.randint(0, 255)) for _ in range(4)),
            f"v{rng.randint(0, 20)}.{rng.randint(0, 99)}.{rng.randint(0, 999)}",
            f"INV-{digits(5)}",
            f"PO-{year}-{digits(5)}",
            f"#{digits(rng.randint(3, 8))}",
            f"{''.join(rng.choices(string.ascii_uppercase, k=2))}-{digits(4)}",
            f"ticket {digits(7)}",
            f"{rng.randint(1, 500)} x {rng.randint(1, 1000)} ml",
            f"1Z{''.join(rng.choices(string.ascii_uppercase + string.digits, k=16))}",
            f"1{digits(2)}-{digits(3)}-{digits(4)}",
        ]
    )


def test_random_near_misses_are_left_alone():
    rng = random.Random("near-miss")
    for _ in range(3000):
        pieces = [random_near_miss(rng) for _ in range(rng.randint(1, 4))]
        text = rng.choice([" ", ", ", "; ", " and ", "\n"]).join(pieces)
        assert find_pii(text) == [], text


def random_jumble(rng: random.Random) -> str:
    """Values, near-misses, digits and punctuation glued together in any order."""
    pieces = [GENERATORS[kind](rng) for kind in rng.choices(KINDS, k=rng.randint(0, 4))]
    pieces += rng.choices(FILLER_WORDS, k=rng.randint(0, 6))
    pieces += ["".join(rng.choices(string.digits, k=rng.randint(1, 6))) for _ in range(3)]
    rng.shuffle(pieces)
    separators = [" ", "", "-", ".", ", ", "/", "\n", "@", "+", "(", ")"]
    return "".join(piece + rng.choice(separators) for piece in pieces)


def test_find_pii_returns_sorted_non_overlapping_matches_on_random_jumbles():
    rng = random.Random("jumble-order")
    for _ in range(1500):
        text = random_jumble(rng)
        matches = find_pii(text)
        for before, after in itertools.pairwise(matches):
            assert before.end <= after.start, (text, matches)
        assert all(0 <= m.start < m.end <= len(text) and m.kind in KINDS for m in matches)


# --------------------------------------------------------------------------------------------
# Idempotence, placeholders and counts
# --------------------------------------------------------------------------------------------


def test_redaction_is_idempotent_on_the_corpus():
    for line in corpus():
        once = redact(line.text)
        assert redact(once) == once, once


@pytest.mark.parametrize(
    "text",
    [
        "a@example.com-b@example.org",  # the second address starts right after the first
        "(415) 555-0198/+44 (0)20 7946 0321",  # "8/" before "+44" blocks it until masked
        "415-555-0190 415-555-0191",
        "AT61 1904 3002 3457 3201 CH93 0076 2011 6238 5295 7",
    ],
)
def test_redaction_is_idempotent_on_values_glued_together(text):
    once = redact(text)
    assert redact(once) == once
    assert not any(char.isdigit() or char == "@" for char in once), once


def test_redaction_is_idempotent_on_random_jumbles():
    rng = random.Random("jumble-idempotent")
    for _ in range(1500):
        once = redact(random_jumble(rng))
        assert redact(once) == once, once


@pytest.mark.parametrize(
    "text",
    [
        *PLACEHOLDERS.values(),
        "".join(PLACEHOLDERS.values()),
        "[PHONE] [PHONE]-[CARD] 1234 [IBAN]12 [EMAIL]@example",
        "call [PHONE] ext. 12 or [PHONE]",
    ],
)
def test_placeholders_are_never_matched_again(text):
    assert find_pii(text) == []


def test_redact_counting_counts_each_kind():
    text = (
        "a@example.com, b@example.org; card 4111 1111 1111 1111; "
        "IBAN GB29 NWBK 6016 1331 9268 19; call +44 20 7946 0958 or (415) 555-2671 "
        "or 030 901820."
    )
    redacted, counts = redact_counting(text)
    assert counts == Counter({"email": 2, "card": 1, "iban": 1, "phone": 3})
    assert redacted == (
        "[EMAIL], [EMAIL]; card [CARD]; IBAN [IBAN]; call [PHONE] or [PHONE] or [PHONE]."
    )


def test_redact_counting_agrees_with_the_corpus_labels():
    for line in corpus():
        redacted, counts = redact_counting(line.text)
        assert redacted == redact(line.text)
        assert counts == Counter(kind for kind, _start, _end in line.spans()), line.text


def test_missing_and_empty_text_pass_through():
    assert redact(None) is None
    assert redact("") == ""
    assert find_pii("") == []
    assert find_pii(None) == []
    assert redact_counting(None) == (None, Counter())
    assert redact_counting("no personal data here") == ("no personal data here", Counter())


def test_matches_are_immutable_values():
    match = PiiMatch("email", 0, 5)
    assert match == PiiMatch("email", 0, 5)
    with pytest.raises(AttributeError):
        match.kind = "phone"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


def reference_redact_record(record):
    """redact_record as first written (every string through redact_counting, every container
    copied): the definition the fast path must match."""
    found: Counter[str] = Counter()

    def clean(value):
        if isinstance(value, str):
            text, counts = redact_counting(value)
            found.update(counts)
            return text
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    return clean(record), found


def shape(value):
    """value with the type of every part spelled out: == alone takes 1, 1.0 and True for equal."""
    if isinstance(value, dict):
        return (type(value), [(shape(key), shape(item)) for key, item in value.items()])
    if isinstance(value, list | tuple):
        return (type(value), [shape(item) for item in value])
    return (type(value), value)


def assert_redacted_as_before(record) -> None:
    kept = copy.deepcopy(record)
    redacted, counts = redact_record(record)
    expected, expected_counts = reference_redact_record(kept)
    assert shape(redacted) == shape(expected), record
    assert list(counts.items()) == list(expected_counts.items()), record
    assert shape(record) == shape(kept), "the caller's record was modified"
    assert redacted is not record


class Note(str):
    """A str subclass: redact_record turns it into a plain str, as it always did."""


def random_ticket_text(rng: random.Random) -> str:
    choice = rng.randrange(9)
    if choice == 0:
        return embed(GENERATORS[rng.choice(KINDS)](rng), rng)[0]
    if choice == 1:
        return GENERATORS[rng.choice(KINDS)](rng)
    if choice == 2:
        return random_near_miss(rng)
    if choice == 3:
        return random_jumble(rng)
    if choice == 4:
        return rng.choice(corpus()).text
    if choice == 5:
        return rng.choice(FILLER_WORDS)
    if choice == 6:
        return rng.choice(["", "open", "normal", "support@example.com", "2026-03-12T16:40:53Z"])
    if choice == 7:
        return "".join(rng.choices(string.digits + " .-()/+@xX", k=rng.randint(1, 24)))
    return Note(rng.choice(["call 415-555-0199", "no digits", ""]))


def random_ticket_value(rng: random.Random, depth: int):
    choice = rng.randrange(8 if depth < 4 else 5)
    if choice < 2:
        return random_ticket_text(rng)
    if choice == 2:
        return rng.choice([None, True, False, 0, 360001234501, 1.5])
    if choice == 3:
        return rng.choice([(), ("a@example.com",), b"a@example.com"])  # not JSON: kept as they are
    if choice == 4:
        return []
    if choice == 5:
        return [random_ticket_value(rng, depth + 1) for _ in range(rng.randint(1, 4))]
    return random_ticket(rng, depth + 1)


def random_ticket(rng: random.Random, depth: int = 0):
    keys = rng.sample(
        ["subject", "description", "via", "from", "tags", "value", "custom_fields"], 4
    )
    ticket = {key: random_ticket_value(rng, depth) for key in keys}
    if rng.random() < 0.1:
        ticket = OrderedDict(ticket)  # a dict subclass comes back as a plain dict, as it always did
    return ticket


def test_redact_record_matches_the_reference_on_random_tickets():
    rng = random.Random("records")
    for _ in range(1500):
        assert_redacted_as_before(random_ticket(rng))


def test_redact_record_matches_the_reference_on_the_corpus():
    lines = corpus()
    for start in range(0, len(lines), 7):
        batch = [line.text for line in lines[start : start + 7]]
        assert_redacted_as_before(
            {
                "subject": batch[0],
                "description": "\n\n".join(batch),
                "via": {"source": {"from": {"address": batch[-1], "name": None}}},
                "custom_fields": [{"id": 1, "value": text} for text in batch],
                "tags": batch,
            }
        )


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"tags": [], "via": {"source": {}}, "id": 1, "status": "open"},
        {"a": {"b": [{"c": "nothing to see"}]}, "d": [["x"], []]},
        {"a": {"b": [{"c": "mail a@example.com"}]}, "d": [["call +44 20 7946 0958"], []]},
        {"seen": ["a@example.com", "a@example.com"], "at": "2026-03-12T16:40:53Z"},
        {"note": Note("4111 1111 1111 1111"), "empty": Note(""), "raw": ("a@example.com",)},
        OrderedDict(inner=OrderedDict(text="a@example.com"), plain=OrderedDict(x=1)),
    ],
)
def test_redact_record_matches_the_reference_on_the_edge_cases(record):
    assert_redacted_as_before(record)


def test_redact_record_never_hands_back_or_changes_the_callers_record():
    nested = {"id": 7, "tags": ["a"]}
    record = {"ticket": nested, "note": "write to a@example.com"}
    redacted, counts = redact_record(record)
    assert redacted == {"ticket": nested, "note": "write to [EMAIL]"} and counts == {"email": 1}
    assert record["note"] == "write to a@example.com"
    clean = {"ticket": nested}
    assert redact_record(clean)[0] is not clean and redact_record(clean)[0] == clean


def mutated(text: str, rng: random.Random) -> str:
    """text with one character deleted, replaced or inserted."""
    position = rng.randrange(len(text) + 1)
    char = rng.choice("0123456789 .-()/+xX@aZ:,#\x00")
    step = rng.randrange(3)
    if step == 0:
        return text[:position] + text[position + 1 :]
    if step == 1:
        return text[:position] + char + text[position + 1 :]
    return text[:position] + char + text[position:]


def test_strings_skipped_as_holding_no_pii_hold_none():
    """The pre-check that spares most strings of a ticket the detectors must never skip a string in
    which a detector finds anything. Each text is mutated one character at a time, staying with
    texts in which something is still found: towards the least a detector accepts."""
    rng = random.Random("may-hold-pii")
    seeds = [line.text for line in corpus()] + [random_ticket_text(rng) for _ in range(800)]
    for country, length in sorted(IBAN_LENGTHS.items()):  # the fewest digits an IBAN can have
        bban = "".join(rng.choices(string.ascii_uppercase, k=length - 4))
        iban = country + reference_iban_check_digits(country, bban) + bban
        assert [match.kind for match in find_pii(iban)] == ["iban"], iban
        seeds.append(embed(iban, rng)[0])
    found = skipped = 0
    for text in seeds:
        for _ in range(30):
            candidate = mutated(text, rng)
            if find_pii(candidate):
                found += 1
                assert _may_hold_pii(candidate), candidate
                text = candidate
            elif not _may_hold_pii(candidate):
                skipped += 1
            elif rng.random() < 0.3:
                text = candidate
    assert found > 5000 and skipped > 1000, "the test no longer reaches the pre-check's edge"

"""Redact personal data from free-text support tickets before it reaches the data lake.

Customers and agents paste e-mail addresses, phone numbers, payment card numbers and IBANs into
ticket subjects and descriptions. Nothing downstream needs them, and a lake is hard to scrub once
they have landed, so every text field goes through :func:`redact` first and each value is replaced
by a typed placeholder (``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[IBAN]``).

Design, in the order the detectors run (see ``docs/redaction.md`` for the measured quality):

1. **E-mail** first: an address may contain digits that would otherwise look like a phone.
2. **IBAN**: country code, check digits, BBAN of the registered length, ISO 13616 mod-97 check.
3. **Card**: 13-19 digits in a known grouping, Luhn check. Checksums keep precision high: a
   16-digit order number is a card only if it happens to pass Luhn.
4. **Phone** last, on what is left: E.164/international, US (NANP), UK and DE national formats.

Each detector scans a copy of the text in which earlier finds are masked with a neutral
character, so finds never overlap and a card is never re-read as a phone. The mask behaves like
the brackets of a placeholder, and detection repeats on the masked text while a new mask touches
text that a detector could now read differently; so ``redact(redact(x)) == redact(x)``.

Only the standard library's ``re`` is used; all patterns are compiled once at import.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, overload

__all__ = [
    "IBAN_LENGTHS",
    "PLACEHOLDERS",
    "PiiMatch",
    "find_pii",
    "iban_valid",
    "luhn_valid",
    "redact",
    "redact_counting",
]

PLACEHOLDERS: dict[str, str] = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card": "[CARD]",
    "iban": "[IBAN]",
}

# Stands in for text already claimed by an earlier detector. Like the "[" and "]" that wrap a
# placeholder it is neither a word character, a digit nor a separator, so every look-around sees
# the same thing in masked text as in redacted text (which is what makes redaction idempotent).
_MASK = "\x00"

Span = tuple[int, int]


class _Find(NamedTuple):
    """What a detector reports. A look-alike (is_pii False) is masked, so later detectors leave
    it alone, but not redacted: a mistyped IBAN is not an IBAN, and its digits are no phone."""

    start: int
    end: int
    is_pii: bool = True


@dataclass(frozen=True, slots=True)
class PiiMatch:
    """One detected value: its kind (a key of PLACEHOLDERS) and its [start, end) offsets."""

    kind: str
    start: int
    end: int


# --------------------------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------------------------


# Digit sum of twice each digit, for the doubled positions of the Luhn check.
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_valid(digits: str) -> bool:
    """Luhn (mod-10) check used by every card scheme; rejects ~90% of random digit strings."""
    if not digits.isascii() or not digits.isdigit():
        return False
    values = [ord(char) - 48 for char in digits]
    kept = sum(values[-1::-2])
    doubled = sum(_LUHN_DOUBLED[value] for value in values[-2::-2])
    return (kept + doubled) % 10 == 0


# Total IBAN length per country, from the SWIFT IBAN registry (ISO 13616).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """ISO 13616 check on a compact IBAN: known country, registered length, mod 97 == 1.

    Check digits 00, 01 and 99 are never issued (they alias 97, 98 and 02 under mod 97), so
    they are rejected even when the remainder works out.
    """
    iban = iban.upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isascii() or not iban.isalnum():
        return False
    if not iban[2:4].isdigit() or not 2 <= int(iban[2:4]) <= 98:
        return False
    rearranged = iban[4:] + iban[:4]
    return int(rearranged.translate(_LETTERS_AS_NUMBERS)) % 97 == 1


# ISO 13616 reads A as 10, B as 11, ... Z as 35.
_LETTERS_AS_NUMBERS = str.maketrans({chr(ord("A") + n): str(10 + n) for n in range(26)})


# --------------------------------------------------------------------------------------------
# Scanning
# --------------------------------------------------------------------------------------------


def _scan(
    pattern: re.Pattern[str],
    text: str,
    judge: Callable[[str, re.Match[str]], _Find | None],
) -> Iterator[_Find]:
    """Candidates of pattern, each accepted, trimmed or refused by judge.

    Unlike finditer, the scan resumes where the accepted find ends, or one character after a
    refused candidate: a candidate can swallow the start of the next value ("AT61 1904 3002
    3457 3201 CH93 ..." reads as one long IBAN-ish run until it is cut back to 20 characters).
    """
    position = 0
    while match := pattern.search(text, position):
        find = judge(text, match)
        if find:
            yield find
            position = find.end
        else:
            position = match.start() + 1


# --------------------------------------------------------------------------------------------
# E-mail
# --------------------------------------------------------------------------------------------

# Practical RFC 5322 subset: dot-atom local part (letters of any script, digits, _ % + -, and an
# apostrophe inside a name such as o'brien), ASCII host names, and a letters-only TLD. The
# look-behind only stops a match from starting mid-word; after "." or "'" it may start, so
# "'ann@example.com'" and "mailto:ann@example.com" both yield the bare address. A trailing "."
# or "," cannot be part of the TLD, so sentence punctuation stays outside the match. The
# look-ahead for an "@" within 64 characters (the RFC 5321 limit) keeps the scan linear on
# long dotted runs such as "a.a.a.a...".
_EMAIL_RE = re.compile(
    r"""
    (?<![\w%+-])
    (?=[\w%+'.-]{1,64}@)
    [\w%+-]+ (?:['.][\w%+-]+)*
    @
    (?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+
    [A-Za-z]{2,63}
    (?![A-Za-z0-9])
    """,
    re.VERBOSE,
)


_LOCAL_PART_MAX = 64  # RFC 5321


def _email_finds(text: str) -> Iterator[_Find]:
    """Every e-mail address.

    The regex is only started a local part's length before each "@": scanning the whole text
    from the start costs more than all other detectors together.
    """
    position = 0
    while (at := text.find("@", position)) != -1:
        match = _EMAIL_RE.search(text, max(position, at - _LOCAL_PART_MAX))
        if match is None:
            return
        yield _Find(*match.span())
        position = match.end()


# --------------------------------------------------------------------------------------------
# IBAN
# --------------------------------------------------------------------------------------------

# Candidates: country + check digits, then the BBAN either compact, after one space, or in the
# printed groups of four. The candidate may run into the next word ("... 7034 from"); the
# validator trims it to the country's registered length. The match starts at the first check
# digit (the country code is checked by look-behind) because scanning for digits is much
# faster than scanning for letters; _IBAN_COUNTRY_WIDTH puts the country code back.
_IBAN_COUNTRY_WIDTH = 2
_IBAN_RE = re.compile(
    r"""
    [0-9](?<=[A-Za-z]{2}[0-9])(?<![A-Za-z0-9][A-Za-z]{2}[0-9])[0-9]
    (?:
        [ ]?[A-Za-z0-9]{11,30}
      | (?:[ ][A-Za-z0-9]{4}){2,7}(?:[ ][A-Za-z0-9]{1,4})?
    )
    (?![A-Za-z0-9])
    """,
    re.VERBOSE | re.ASCII,
)


def _iban_finds(text: str) -> Iterator[_Find]:
    """Every IBAN-shaped string (known country, registered length), trimmed to that length.

    Only mod-97-valid ones are PII; the others are reported as look-alikes.
    """
    return _scan(_IBAN_RE, text, _judge_iban)


def _judge_iban(text: str, match: re.Match[str]) -> _Find | None:
    start = match.start() - _IBAN_COUNTRY_WIDTH
    length = IBAN_LENGTHS.get(text[start : match.start()].upper())
    if length is None:
        return None
    end = _end_after_alnum_count(text, start, match.end(), length)
    if end is None:
        return None
    return _Find(start, end, iban_valid(text[start:end].replace(" ", "")))


def _end_after_alnum_count(text: str, start: int, stop: int, count: int) -> int | None:
    """Offset just past the count-th letter/digit from start, if it ends a space-delimited group.

    Lets "BE68 5390 0754 7034 from" be cut back to the 16 characters a Belgian IBAN has, while
    refusing to cut a group (or a compact run) in half.
    """
    seen = 0
    for index in range(start, stop):
        if text[index] != " ":
            seen += 1
            if seen == count:
                end = index + 1
                return end if end == stop or text[end] == " " else None
    return None


# --------------------------------------------------------------------------------------------
# Payment card
# --------------------------------------------------------------------------------------------

# A run of digits joined by single spaces or dashes that holds at least 13 digits; the run is
# split into groups and searched for a card layout, so a card next to a date, a CVV or an expiry
# ("4111 1111 1111 1111 12/28") is still found. A run glued to letters is part of some other
# identifier (a mistyped IBAN, a reference like "ORD4000..."), and a "+" marks a phone.
# (Digit first, boundary checked by look-behind after it: much faster than look-behind first.)
_DIGIT_RUN_RE = re.compile(
    r"[0-9](?<![0-9A-Za-z+][0-9])(?<![0-9][ -][0-9])(?:[ -]?[0-9]){12,}(?![A-Za-z0-9])",
    re.ASCII,
)
_DIGIT_GROUP_RE = re.compile(r"[0-9]+", re.ASCII)

# Printed groupings: 4-4-4-4 (most schemes), 4-4-4-4-3 (19-digit Visa/Discover/UnionPay),
# 4-6-5 (Amex) and 4-6-4 (Diners). Longest first. Ungrouped 13-19 digits are handled apart.
_CARD_LAYOUTS: tuple[tuple[int, ...], ...] = ((4, 4, 4, 4, 3), (4, 4, 4, 4), (4, 6, 5), (4, 6, 4))
_CARD_DIGITS = range(13, 20)
# Lengths shared with Luhn-carrying identifiers that product-support tickets quote, and the
# only card prefixes issued at that length: every IMEI is a Luhn-valid 15-digit number, and
# one EAN-13 barcode in ten passes Luhn. 15 digits: Amex (34, 37), UATP (1), old JCB (2131);
# 13 digits: old Visa (4).
_SHORT_CARD_PREFIXES: dict[int, tuple[str, ...]] = {13: ("4",), 15: ("34", "37", "1", "2131")}


def _card_finds(text: str) -> Iterator[_Find]:
    """Every Luhn-valid card number in a supported layout."""
    for run in _DIGIT_RUN_RE.finditer(text):
        groups = [group.span() for group in _DIGIT_GROUP_RE.finditer(text, *run.span())]
        yield from _cards_in_run(text, groups)


def _cards_in_run(text: str, groups: list[Span]) -> Iterator[_Find]:
    """Scan the groups of one digit run left to right for card windows."""
    index = 0
    while index < len(groups):
        width = _card_window_at(text, groups, index)
        if width:
            yield _Find(groups[index][0], groups[index + width - 1][1])
            index += width
        else:
            index += 1


def _card_window_at(text: str, groups: list[Span], index: int) -> int:
    """Number of groups forming a valid card that starts at groups[index], or 0."""
    sizes = [end - start for start, end in groups[index : index + 5]]
    if sizes[0] in _CARD_DIGITS and _is_card_number(text, groups[index : index + 1]):
        return 1
    for layout in _CARD_LAYOUTS:
        width = len(layout)
        if tuple(sizes[:width]) != layout:
            continue
        window = groups[index : index + width]
        if _is_card_number(text, window) and not _continues_longer_number(
            text, groups, index, width
        ):
            return width
    return 0


def _is_card_number(text: str, window: list[Span]) -> bool:
    """Luhn-valid, and for 13/15 digits in a card range (so not an EAN-13 or an IMEI)."""
    digits = "".join(text[start:end] for start, end in window)
    prefixes = _SHORT_CARD_PREFIXES.get(len(digits))
    if prefixes and not digits.startswith(prefixes):
        return False
    return luhn_valid(digits)


# A card window may share its run with up to this many digits grouped the same way: a year,
# a PIN or "last 4" after a card stays a card; more is taken for one long number.
_MAX_DIGITS_GLUED_TO_CARD = 4


def _continues_longer_number(text: str, groups: list[Span], index: int, width: int) -> bool:
    """True if the window is a slice of a longer number grouped the same way.

    "9400 1000 0000 0000 0000 00" (a spaced tracking number) is one 22-digit number, not a
    card plus change; "4111 1111 1111 1111 2026-11-01" is a card and then a date. Groups
    joined by a separator the window does not use (the "-" of the date) do not count.
    """
    separators = {text[groups[i][1]] for i in range(index, index + width - 1)}
    glued = 0
    for neighbour in range(index - 1, -1, -1):
        if text[groups[neighbour][1]] not in separators:
            break
        glued += groups[neighbour][1] - groups[neighbour][0]
        if glued > _MAX_DIGITS_GLUED_TO_CARD:  # stop early: runs can be thousands of groups
            return True
    for neighbour in range(index + width, len(groups)):
        if text[groups[neighbour][0] - 1] not in separators:
            break
        glued += groups[neighbour][1] - groups[neighbour][0]
        if glued > _MAX_DIGITS_GLUED_TO_CARD:
            return True
    return False


# --------------------------------------------------------------------------------------------
# Phone
# --------------------------------------------------------------------------------------------

# Not glued to a word, an amount, a "#"/"+" id or the tail of another number (dates, IPs,
# versions, "PO-2026-...", "INV-...").
_PHONE_LEFT = r"(?<![A-Za-z0-9_+\#$@€£¥])(?<![0-9][.,:/-])(?<![A-Za-z][-])"
# Not running on into a word or another number ("...0958.5", "...2671-12", "...0958abc").
_PHONE_RIGHT = r"(?![A-Za-z0-9_@]|[.,:/-][0-9])"

_DIGIT_GROUPS = r"[0-9]+(?:[ .-][0-9]+)*"
# Formats without a leading "+" must not continue a space-separated digit run either, so the
# tail of a mistyped IBAN or a long reference number ("DE89 3704 0044 0532 ...") is no phone.
_NOT_AFTER_DIGIT_SPACE = r"(?<![0-9][ ])"
# +CC or 00CC (00 needs a separator after the country code, so plain zero-padded ids are
# left alone), an optional "(0)" trunk or "(area)", then digit groups.
_INTERNATIONAL = rf"""
    (?: \+[1-9][0-9]{{0,3}} | {_NOT_AFTER_DIGIT_SPACE}00[1-9][0-9]{{0,2}}(?=[ .(-]) )
    (?:[ .-]?\([0-9]{{1,4}}\))?
    [ .-]?{_DIGIT_GROUPS}
"""
# NANP: area code and exchange both start 2-9 (so "123-456-7890" is not a phone), optional
# leading "1", area code may be parenthesised.
_US = rf"""
    {_NOT_AFTER_DIGIT_SPACE}
    (?:1[ .-])?
    (?: \([2-9][0-9]{{2}}\)[ ]? | [2-9][0-9]{{2}}[ .-] )
    [2-9][0-9]{{2}}[ .-][0-9]{{4}}
"""
# UK/DE national: trunk 0, 1-4 more area-code digits, a separator ("030 / 901820" and
# "(030) 901820" included), then the subscriber number in up to four groups; a German
# extension may be a single digit after a dash ("030 901820-0" is the switchboard).
_NATIONAL = rf"""
    {_NOT_AFTER_DIGIT_SPACE}
    (?: \(0[1-9][0-9]{{1,3}}\)[ ]? | 0[1-9][0-9]{{1,3}}(?:[ -]|[ ]?/[ ]?) )
    [0-9]{{2,8}}(?:[ ][0-9]{{2,8}}|-[0-9]{{1,8}}){{0,3}}
"""
_EXTENSION = r"(?:,?[ ]?(?:ext\.?|extn\.?|extension|x)[ ]?[0-9]{1,5})"

_PHONE_RE = re.compile(
    rf"""
    (?=[0-9+(])  # cheap first test; makes the whole scan ~2.5x faster
    {_PHONE_LEFT}
    (?: (?P<international>{_INTERNATIONAL}) | (?P<us>{_US}) | (?P<national>{_NATIONAL}) )
    (?P<extension>{_EXTENSION})?
    {_PHONE_RIGHT}
    """,
    re.VERBOSE | re.ASCII | re.IGNORECASE,
)

# Digits allowed in the number itself (a "(0)" trunk prefix does not count): E.164 allows up
# to 15; UK national numbers have 10-11, DE national 9-12 (shorter DE numbers are not covered).
_INTERNATIONAL_DIGITS = range(8, 16)
_NATIONAL_DIGITS = range(9, 13)
_TRUNK_ZERO = "(0)"


def _phone_finds(text: str) -> Iterator[_Find]:
    """Every phone number, with its extension when one follows."""
    return _scan(_PHONE_RE, text, _judge_phone)


def _judge_phone(text: str, match: re.Match[str]) -> _Find | None:
    branch = match.lastgroup if match.lastgroup != "extension" else _number_group(match)
    if branch == "international":
        span = _international_span(text, match)
    elif branch == "national":
        digits = _count_number_digits(match.group("national"))
        span = match.span() if digits in _NATIONAL_DIGITS else None
    else:
        span = match.span()
    return _Find(*span) if span else None


def _international_span(text: str, match: re.Match[str]) -> Span | None:
    """The match, or its number cut back to 15 digits when a quantity or id trails it.

    A "+" (or "00") marks the start of a phone so clearly that trailing groups are trimmed; a
    national-format run that is too long is instead taken to be some other number.
    """
    start, end = match.span("international")
    trimmed = _trim_to_digit_limit(text, start, end, _INTERNATIONAL_DIGITS.stop - 1)
    if trimmed is None or _count_number_digits(text[start:trimmed]) < _INTERNATIONAL_DIGITS.start:
        return None
    return (match.start(), match.end()) if trimmed == end else (match.start(), trimmed)


def _number_group(match: re.Match[str]) -> str:
    """Which number branch matched when the last group to match was the extension."""
    return next(name for name in ("international", "us", "national") if match.group(name))


def _count_number_digits(number: str) -> int:
    number = number.replace(_TRUNK_ZERO, "")
    return len(number) - len(number.translate(_DROP_DIGITS))


_DROP_DIGITS = str.maketrans("", "", "0123456789")


def _trim_to_digit_limit(text: str, start: int, end: int, high: int) -> int | None:
    """Drop trailing digit groups until at most `high` digits remain (e.g. a quantity after it)."""
    while _count_number_digits(text[start:end]) > high:
        cut = max(text.rfind(sep, start, end) for sep in " .-")
        if cut <= start:
            return None
        end = cut
    return end


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

_HAS_DIGIT = re.compile(r"[0-9]").search

Detector = Callable[[str], Iterator[_Find]]
# Order matters: see the module docstring. The flag says the detector needs a digit.
_DETECTORS: tuple[tuple[str, Detector, bool], ...] = (
    ("email", _email_finds, False),
    ("iban", _iban_finds, True),
    ("card", _card_finds, True),
    ("phone", _phone_finds, True),
)


def find_pii(text: str | None) -> list[PiiMatch]:
    """All PII in text as non-overlapping matches sorted by offset; [] for None or ""."""
    if not text:
        return []
    found: list[PiiMatch] = []
    scan = text
    while True:
        new, scan, masked = _detect_round(scan)
        found.extend(new)
        if not _may_unblock_more(scan, masked):
            break
    found.sort(key=lambda match: match.start)
    return found


def _detect_round(scan: str) -> tuple[list[PiiMatch], str, list[_Find]]:
    """Run every detector once, masking each detector's finds before the next one looks."""
    found: list[PiiMatch] = []
    masked: list[_Find] = []
    has_digit = _HAS_DIGIT(scan) is not None
    for kind, detect, needs_digit in _DETECTORS:
        if needs_digit and not has_digit:
            continue
        finds = list(detect(scan))
        if finds:
            found.extend(PiiMatch(kind, find.start, find.end) for find in finds if find.is_pii)
            masked.extend(finds)
            scan = _mask(scan, finds)
            has_digit = _HAS_DIGIT(scan) is not None
    return found, scan, masked


# Characters that detectors read as part of, or glued to, a value: touching a mask, or (for
# the start of a number) up to two characters from it, they may change a detector's verdict.
_STICKY = re.compile(r"[\w%+'@(-]")
_NUMBER_START = re.compile(r"[0-9+(]")
_LOOK_AROUND_REACH = 2


def _may_unblock_more(scan: str, masked: list[_Find]) -> bool:
    """True if a new mask sits close enough to other text for another round to find more.

    Detectors reject values glued to other text ("415-555-0190 415-555-0191", a phone whose
    digits run on into a card, "a@example.com+b@example.org"). Once the neighbour is masked
    the rejection may no longer hold, and a redacted text would be scanned in that state, so
    redaction repeats until stable. The look-arounds reach at most two characters, so when
    every new mask is set off by spaces or punctuation the extra round is skipped.
    """
    for start, end, _is_pii in masked:
        before = max(0, start - _LOOK_AROUND_REACH)
        after = end + _LOOK_AROUND_REACH
        if (start and _STICKY.match(scan, start - 1)) or _STICKY.match(scan, end):
            return True
        if _NUMBER_START.search(scan, before, start) or _NUMBER_START.search(scan, end, after):
            return True
    return False


def _mask(text: str, finds: list[_Find]) -> str:
    """Overwrite finds with the neutral mask character, keeping every offset unchanged."""
    pieces: list[str] = []
    position = 0
    for start, end, _is_pii in finds:
        pieces.append(text[position:start])
        pieces.append(_MASK * (end - start))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


@overload
def redact(text: str) -> str: ...
@overload
def redact(text: None) -> None: ...
def redact(text: str | None) -> str | None:
    """Text with every detected value replaced by its placeholder; None stays None."""
    return redact_counting(text)[0]


@overload
def redact_counting(text: str) -> tuple[str, Counter[str]]: ...
@overload
def redact_counting(text: None) -> tuple[None, Counter[str]]: ...
def redact_counting(text: str | None) -> tuple[str | None, Counter[str]]:
    """Like redact, plus how many values of each kind were replaced (for run metadata)."""
    counts: Counter[str] = Counter()
    return _redact_into(text, counts), counts


def _redact_into(text: str | None, counts: Counter[str]) -> str | None:
    """Text redacted, with the values replaced added to counts (a record's strings share one)."""
    if not text:
        return text
    pieces: list[str] = []
    position = 0
    for match in find_pii(text):
        pieces.append(text[position : match.start])
        pieces.append(PLACEHOLDERS[match.kind])
        counts[match.kind] += 1
        position = match.end
    pieces.append(text[position:])
    return "".join(pieces)


def redact_record(record: dict[str, Any]) -> tuple[dict[str, Any], Counter[str]]:
    """A JSON record with PII redacted in every string it holds, however deeply nested, and the counts:
    a ticket carries PII beyond its subject and description (an e-mail ticket's sender in
    `via.source.from`), and the raw JSON is landed too.

    The caller's record is never modified and never returned: the record returned is a new dict. An
    object or array nested in it that held no PII is the caller's own, not a copy (copying every
    part of every ticket cost more than the redaction itself).
    """
    found: Counter[str] = Counter()
    redacted = _redacted(record, found)
    if redacted is record and isinstance(record, dict | list):
        redacted = record.copy()
    return redacted, found


def _redacted(value: Any, found: Counter[str]) -> Any:
    """value with every string in it redacted; value itself if there was nothing to redact."""
    if isinstance(value, str):
        # Only an exact str is returned as it is: a subclass came back as a plain str before.
        if type(value) is str and not _may_hold_pii(value):
            return value
        return _redact_into(value, found)
    if type(value) is dict:
        return _redacted_dict(value, found)
    if type(value) is list:
        return _redacted_list(value, found)
    # Subclasses are rebuilt as plain containers, as they always were.
    if isinstance(value, dict):
        return {key: _redacted(item, found) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, found) for item in value]
    return value


# Values _redacted returns as they are, tested inline: a call per number costs more than the test.
_UNTOUCHED = frozenset({type(None), bool, int, float})


def _redacted_dict(value: dict[Any, Any], found: Counter[str]) -> dict[Any, Any]:
    return _copied_on_change(value, value.items(), found)


def _redacted_list(value: list[Any], found: Counter[str]) -> list[Any]:
    return _copied_on_change(value, enumerate(value), found)


def _copied_on_change(value: Any, items: Iterable[tuple[Any, Any]], found: Counter[str]) -> Any:
    """value itself if nothing in it was redacted, else a copy with the redacted items replaced."""
    copied = None
    for key, item in items:
        if type(item) in _UNTOUCHED:
            continue
        redacted = _redacted(item, found)
        if redacted is not item:
            if copied is None:
                copied = value.copy()
            copied[key] = redacted
    return value if copied is None else copied


# Most strings of a ticket are statuses, tags, URLs and timestamps: running the detectors on each
# cost more than all the rest of redact_record. A detector only finds (as PII, or as a look-alike
# it masks) text holding what its pattern requires, so find_pii returns [] for a string with none
# of the following, and it is returned as it is:
# - e-mail: an "@" (_email_finds only looks around each "@");
# - IBAN: two ASCII letters and then two ASCII digits (_IBAN_RE: country code, check digits);
# - international phone: "+" and a digit 1-9, or "00", a digit 1-9, up to two digits and one of
#   " .(-" (the two prefixes _INTERNATIONAL allows);
# - US or national phone, or card: 9 ASCII digits in a row, where one digit may be separated
#   from the next by at most three of " .()/-" (_US needs 10 digits, with at most ") " or "-("
#   between two of them; _judge_phone keeps a national number only with 9 or more digits, with at
#   most " / " or ") " between two; _DIGIT_RUN_RE needs 13, with at most a " " or "-").
# A later round only scans the text with some characters masked, in which none can appear anew.
# An ISO timestamp ("2026-03-12T16:40:53Z") has only 8 digits in such a row, so it is skipped.
_MAY_HOLD_NUMBER = re.compile(
    r"""
    [A-Za-z]{2}[0-9]{2}
    | \+[1-9] | 00[1-9][0-9]{0,2}[ .(-]
    | [0-9](?:[ .()/-]{0,3}[0-9]){8}
    """,
    re.VERBOSE,
).search


def _may_hold_pii(text: str) -> bool:
    """False only if no detector can find anything in text (see above)."""
    if "@" in text:
        return True
    return _HAS_DIGIT(text) is not None and _MAY_HOLD_NUMBER(text) is not None

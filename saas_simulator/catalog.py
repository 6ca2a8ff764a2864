"""The world's cast, fixed by the seed: customers, products, suppliers, and each system's spelling.

Accounting (QuickBooks) knows a customer by its legal name, purchasing (Coupa) and support (Zendesk)
by whatever their users typed. Most of those spellings reduce to the legal name under a reasonable
normalisation (case, punctuation, legal suffixes, "&" vs "and"); about 3% per system deliberately do
not (an acronym, a typo, a trading name), so identity-resolution code has something honest to miss.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import numpy as np

from saas_simulator import names, rng
from saas_simulator.config import WorldConfig

HARD_SHARE = 0.03
NEVER_DAY = 10**7  # a day ordinal that never comes

LEGAL_SUFFIXES = frozenset(
    [
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "company",
        "llc",
        "ltd",
        "limited",
        "plc",
        "gmbh",
        "ag",
        "kg",
        "bv",
        "nv",
        "sa",
        "sarl",
        "sas",
    ]
)
SUFFIX_ABBREVIATIONS = {
    "Corporation": "Corp.",
    "Incorporated": "Inc.",
    "Limited": "Ltd.",
    "Company": "Co.",
}


def reference_name_key(name: str) -> str:
    """The normalisation the "resolvable" promise is made against (tests and docs describe it)."""
    text = name.lower().replace("&", " and ")
    text = re.sub("[.'\u2019]", "", text)
    text = re.sub(r"[^\w\s]", " ", text)
    words = text.split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def reference_sku_key(sku: str) -> str:
    return re.sub(r"[^0-9a-z]", "", sku.lower())


@dataclass
class Customers:
    canonical: list[str]
    qbo_name: list[str]
    coupa_name: list[str]
    zendesk_name: list[str]
    coupa_hard: np.ndarray
    zendesk_hard: np.ndarray
    qbo_id: np.ndarray
    coupa_account: list[str]
    zendesk_org_id: np.ndarray
    country: list[str]
    zone: list[str]
    currency: list[str]
    domain: list[str]
    street: list[str]
    city: list[str]
    postal_code: list[str]
    size: np.ndarray
    start_day: np.ndarray
    churn_day: np.ndarray
    affinity: np.ndarray  # customers x categories, rows sum to 1
    terms_days: np.ndarray
    pay_probability: np.ndarray
    pay_offset_days: np.ndarray
    discount: np.ndarray
    contact_offsets: np.ndarray  # contacts of customer c: contact_offsets[c]:contact_offsets[c+1]


@dataclass
class Contacts:
    customer: np.ndarray
    first: list[str]
    last: list[str]
    email: list[str]
    phone: list[str]
    zendesk_user_id: np.ndarray


@dataclass
class Products:
    sku: list[str]
    name: list[str]
    category: np.ndarray
    list_price: np.ndarray
    cost_ratio: np.ndarray
    supplier: np.ndarray
    popularity: np.ndarray  # shares, sum to 1
    trend: np.ndarray  # log growth per year
    launch_day: np.ndarray
    discontinue_day: np.ndarray
    qty_scale: np.ndarray
    qbo_item_id: np.ndarray
    coupa_item_id: np.ndarray
    coupa_item_number: list[str]
    coupa_hard: np.ndarray
    zendesk_product: list[str]
    zendesk_hard: np.ndarray
    source_part_num: list[str]


@dataclass
class Suppliers:
    name: list[str]
    number: list[str]
    coupa_id: np.ndarray
    currency: list[str]
    late_probability: np.ndarray
    mean_delay_days: np.ndarray


@dataclass
class Catalog:
    customers: Customers
    contacts: Contacts
    products: Products
    suppliers: Suppliers
    category_names: list[str]
    season_amplitude: np.ndarray
    season_peak_doy: np.ndarray


def build_catalog(config: WorldConfig) -> Catalog:
    gen = rng.numpy_rng(config.seed, rng.CATALOG)
    text = rng.python_rng(config.seed, rng.CATALOG)
    start = config.history_start.toordinal()
    categories = list(names.CATEGORIES)
    suppliers = _suppliers(config.suppliers, gen, text)
    products = _products(config.products, categories, suppliers, start, gen, text)
    customers, contacts = _customers(config.customer_count, len(categories), start, gen, text)
    amplitude = gen.uniform(0.12, 0.35, len(categories))
    peaks = np.array([names.CATEGORIES[c]["peak_doy"] for c in categories], dtype=float)
    return Catalog(customers, contacts, products, suppliers, categories, amplitude, peaks)


# ---------------------------------------------------------------------------------------- suppliers


def _suppliers(count: int, gen: np.random.Generator, text: random.Random) -> Suppliers:
    regions = ("", " West", " East", " Europe", " Asia", " Central", " North", " South")
    supplier_names = [
        names.SUPPLIER_NAMES[i % len(names.SUPPLIER_NAMES)]
        + regions[(i // len(names.SUPPLIER_NAMES)) % 8]
        for i in range(count)
    ]
    european = ("Würth", "Berner", "Bossard")
    currency = ["EUR" if n.startswith(european) else "USD" for n in supplier_names]
    return Suppliers(
        name=supplier_names,
        number=[f"SUP-{i + 1:04d}" for i in range(count)],
        coupa_id=np.arange(count, dtype=np.int64) + 101,
        currency=currency,
        late_probability=gen.uniform(0.04, 0.35, count),
        mean_delay_days=gen.uniform(2.0, 9.0, count),
    )


# ----------------------------------------------------------------------------------------- products


def _products(
    count: int,
    categories: list[str],
    suppliers: Suppliers,
    start: int,
    gen: np.random.Generator,
    text: random.Random,
) -> Products:
    n_cat = len(categories)
    category = np.arange(count) % n_cat
    gen.shuffle(category)
    supplier_of_category = [
        gen.choice(len(suppliers.name), size=min(3, len(suppliers.name)), replace=False)
        for _ in range(n_cat)
    ]
    supplier = np.array([gen.choice(supplier_of_category[c]) for c in category], dtype=np.int64)
    lo = np.array([names.CATEGORIES[categories[c]]["price"][0] for c in category])
    hi = np.array([names.CATEGORIES[categories[c]]["price"][1] for c in category])
    list_price = np.round(np.exp(gen.uniform(np.log(lo), np.log(hi))), 2)
    popularity = gen.lognormal(0.0, 0.8, count)
    launch = np.where(
        gen.random(count) < 0.82,
        start - gen.integers(30, 400, count),
        start + gen.integers(15, 700, count),
    )
    discontinue = np.where(
        gen.random(count) < 0.10,
        np.maximum(start + gen.integers(60, 700, count), launch + 90),
        NEVER_DAY,
    )
    qty_scale = np.array(
        [names.CATEGORIES[categories[c]]["qty"] for c in category]
    ) * gen.lognormal(0.0, 0.35, count)
    skus = _unique_skus(count, text)
    product_names = [
        _product_name(names.CATEGORIES[categories[c]]["items"], text) for c in category
    ]
    coupa_hard = _hard_mask(gen, count)
    zendesk_hard = _hard_mask(gen, count)
    sku_keys = {reference_sku_key(s) for s in skus}
    coupa_numbers = [
        f"LG-{text.randint(10000, 99999)}" if hard else sku.replace("-", "").lower()
        for sku, hard in zip(skus, coupa_hard, strict=True)
    ]
    zendesk_spelling = [
        _sku_typo(sku, sku_keys, text) if hard else sku.replace("-", "_").lower()
        for sku, hard in zip(skus, zendesk_hard, strict=True)
    ]
    return Products(
        sku=skus,
        name=product_names,
        category=category.astype(np.int64),
        list_price=list_price,
        cost_ratio=gen.uniform(0.5, 0.72, count),
        supplier=supplier,
        popularity=popularity / popularity.sum(),
        trend=np.clip(gen.normal(0.0, 0.3, count), -0.8, 0.8),
        launch_day=launch.astype(np.int64),
        discontinue_day=discontinue.astype(np.int64),
        qty_scale=qty_scale,
        qbo_item_id=np.arange(count, dtype=np.int64) + 11,
        coupa_item_id=np.arange(count, dtype=np.int64) + 3001,
        coupa_item_number=coupa_numbers,
        coupa_hard=coupa_hard,
        zendesk_product=zendesk_spelling,
        zendesk_hard=zendesk_hard,
        source_part_num=[
            f"{text.choice('ABCDEFGHKMNPRSTW')}{text.randint(100000, 999999)}" for _ in skus
        ],
    )


def _hard_mask(gen: np.random.Generator, count: int) -> np.ndarray:
    """Exactly HARD_SHARE of the entries (at least one): every world has some, never too many."""
    mask = np.zeros(count, dtype=bool)
    mask[gen.choice(count, size=max(1, round(HARD_SHARE * count)), replace=False)] = True
    return mask


def _product_name(items: tuple, text: random.Random) -> str:
    noun, specs = text.choice(items)
    return f"{text.choice(names.PRODUCT_GRADES)}{noun} {text.choice(specs)}"


def _unique_skus(count: int, text: random.Random) -> list[str]:
    seen: set[str] = set()
    skus: list[str] = []
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    while len(skus) < count:
        sku = f"{text.choice(letters)}{text.choice(letters)}-{text.randint(1000, 9999)}"
        if reference_sku_key(sku) not in seen:
            seen.add(reference_sku_key(sku))
            skus.append(sku)
    return skus


def _sku_typo(sku: str, taken: set[str], text: random.Random) -> str:
    """Swap (or mistype) digits so no normalisation recovers it and no other SKU matches."""
    letters, digits = sku.split("-")
    for _ in range(50):
        chars = list(digits)
        i = text.randrange(3)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
        if chars == list(digits):
            chars[i] = str((int(chars[i]) + text.randint(1, 8)) % 10)
        candidate = f"{letters.lower()}_{''.join(chars)}"
        if reference_sku_key(candidate) not in taken:
            return candidate
    return f"{letters.lower()}_{digits}x"


# ---------------------------------------------------------------------------------------- customers


def _customers(
    count: int, n_categories: int, start: int, gen: np.random.Generator, text: random.Random
) -> tuple[Customers, Contacts]:
    countries = list(names.COUNTRY_WEIGHTS)
    weights = np.array([names.COUNTRY_WEIGHTS[c] for c in countries])
    country = [
        countries[i] for i in gen.choice(len(countries), size=count, p=weights / weights.sum())
    ]
    bases, canonical = _company_names(country, text)
    keys = {reference_name_key(n) for n in canonical}
    coupa_hard = _hard_mask(gen, count)
    zendesk_hard = _hard_mask(gen, count)
    coupa_name = [
        _hard_variant(b, c, keys, text) if hard else _soft_variant(b, c, text)
        for b, c, hard in zip(bases, canonical, coupa_hard, strict=True)
    ]
    zendesk_name = [
        _hard_variant(b, c, keys, text) if hard else _soft_variant(b, c, text)
        for b, c, hard in zip(bases, canonical, zendesk_hard, strict=True)
    ]
    joins_later = gen.random(count) < 0.15
    start_day = np.where(joins_later, start + gen.integers(20, 700, count), start - 1000)
    churns = gen.random(count) < 0.12
    churn_day = np.where(
        churns, np.maximum(start + gen.integers(90, 800, count), start_day + 90), NEVER_DAY
    )
    affinity = gen.dirichlet(np.full(n_categories, 0.6), size=count)
    domains = [_domain(b, c, text) for b, c in zip(bases, country, strict=True)]
    contacts = _contacts(country, domains, gen, text)
    streets, cities, postals = [], [], []
    for c in country:
        city, postal = text.choice(names.COUNTRIES[c]["cities"])
        streets.append(_street(c, text))
        cities.append(city)
        postals.append(postal)
    customers = Customers(
        canonical=canonical,
        qbo_name=list(canonical),
        coupa_name=coupa_name,
        zendesk_name=zendesk_name,
        coupa_hard=coupa_hard,
        zendesk_hard=zendesk_hard,
        qbo_id=np.arange(count, dtype=np.int64) + 58,
        coupa_account=[f"A{10042 + 7 * i}" for i in range(count)],
        zendesk_org_id=360_000_000_000 + np.sort(gen.choice(10**8, size=count, replace=False)),
        country=country,
        zone=[text.choice(names.COUNTRIES[c]["zones"]) for c in country],
        currency=[names.COUNTRIES[c]["currency"] for c in country],
        domain=domains,
        street=streets,
        city=cities,
        postal_code=postals,
        size=gen.lognormal(0.0, 0.9, count),
        start_day=start_day.astype(np.int64),
        churn_day=churn_day.astype(np.int64),
        affinity=affinity,
        terms_days=gen.choice(np.array([30, 30, 30, 15, 60]), size=count),
        pay_probability=gen.uniform(0.82, 0.99, count),
        pay_offset_days=gen.normal(2.0, 6.0, count),
        discount=gen.uniform(0.0, 0.15, count),
        contact_offsets=contacts.offsets,
    )
    return customers, contacts.contacts


def _company_names(country: list[str], text: random.Random) -> tuple[list[str], list[str]]:
    bases: list[str] = []
    canonical: list[str] = []
    keys: set[str] = set()
    for c in country:
        while True:
            base = _company_base(text)
            suffix = text.choice(names.COUNTRIES[c]["suffixes"])
            name = f"{base} {suffix}"
            key = reference_name_key(name)
            if key not in keys:
                keys.add(key)
                break
        bases.append(base)
        canonical.append(name)
    return bases, canonical


def _company_base(text: random.Random) -> str:
    pattern = text.random()
    if pattern < 0.45:
        return f"{text.choice(names.COMPANY_WORDS)} {text.choice(names.INDUSTRY_WORDS)}"
    if pattern < 0.65:
        words = text.sample(names.COMPANY_WORDS, 2)
        return f"{words[0]} {words[1]} {text.choice(names.INDUSTRY_WORDS)}"
    if pattern < 0.85:
        first, second = text.sample(names.LAST_NAMES, 2)
        return f"{first} & {second}"
    return f"{text.choice(names.LAST_NAMES)} {text.choice(names.INDUSTRY_WORDS)}"


def _soft_variant(base: str, canonical: str, text: random.Random) -> str:
    """A spelling a person might type that still normalises to the legal name."""
    suffix = canonical[len(base) :].strip()
    suffix = SUFFIX_ABBREVIATIONS.get(suffix, suffix) if text.random() < 0.6 else suffix
    if "&" in base and text.random() < 0.5:
        base = base.replace("&", "and")
    form = text.random()
    if form < 0.2:
        return base
    if form < 0.4:
        return f"{base} {suffix}".upper()
    if form < 0.6:
        return re.sub(r"[^\w\s&]", "", f"{base} {suffix}").lower()
    if form < 0.75:
        return f"{base}, {suffix}"
    if form < 0.85:
        return f"{base}  {suffix.rstrip('.')}"
    return f"{base} {suffix}"


def _hard_variant(base: str, canonical: str, taken: set[str], text: random.Random) -> str:
    """A spelling no normalisation recovers: an acronym, a typo or a trading name."""
    words = [w for w in base.replace("&", " ").split() if w]
    candidates = [
        "".join(w[0] for w in words).upper() + " " + canonical[len(base) :].strip(),
        _typo(base) + " " + canonical[len(base) :].strip(),
        f"{words[0]} Group",
    ]
    text.shuffle(candidates)
    for candidate in candidates:
        key = reference_name_key(candidate)
        if key != reference_name_key(canonical) and key not in taken:
            return candidate
    return _typo(base) + "x"


def _typo(base: str) -> str:
    longest = max(base.split(), key=len)
    if len(longest) < 4:
        return base + "s"
    swapped = longest[0] + longest[2] + longest[1] + longest[3:]
    if swapped == longest:
        swapped = longest[0] + longest[2:]
    return base.replace(longest, swapped, 1)


def _domain(base: str, country: str, text: random.Random) -> str:
    words = re.sub(r"[^a-z ]", "", base.lower().replace("&", " ")).split()
    stem = "-".join(words[:2]) if text.random() < 0.5 else "".join(words[:2])
    tld = {"US": ".com", "CA": ".ca", "GB": ".co.uk", "DE": ".de", "NL": ".nl", "FR": ".fr"}[
        country
    ]
    return stem + tld


def _street(country: str, text: random.Random) -> str:
    word = text.choice(names.STREET_WORDS)
    kind = text.choice(names.STREET_KINDS[country])
    number = text.randint(1, 480)
    if country in ("DE", "NL"):
        return f"{word}{kind} {number}"
    if country == "FR":
        return f"{number} {kind} {word}"
    return f"{number} {word} {kind}"


@dataclass
class _ContactBuild:
    contacts: Contacts
    offsets: np.ndarray


def _contacts(
    country: list[str], domains: list[str], gen: np.random.Generator, text: random.Random
) -> _ContactBuild:
    from saas_simulator import pii

    per_customer = gen.integers(1, 5, len(country))
    offsets = np.concatenate([[0], np.cumsum(per_customer)]).astype(np.int64)
    owner = np.repeat(np.arange(len(country)), per_customer)
    first = [text.choice(names.FIRST_NAMES) for _ in owner]
    last = [text.choice(names.LAST_NAMES) for _ in owner]
    email = [
        pii.email_address(text, f, surname, domains[c])
        for f, surname, c in zip(first, last, owner, strict=True)
    ]
    phone = [pii.phone_number(text, country[c]) for c in owner]
    user_ids = 370_000_000_000 + np.sort(gen.choice(10**9, size=len(owner), replace=False))
    return _ContactBuild(Contacts(owner, first, last, email, phone, user_ids), offsets)

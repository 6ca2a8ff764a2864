"""Ticket subjects and descriptions: what customers actually write, personal data included.

The text of a ticket is a pure function of (seed, ticket id) and the ticket's structured facts
(topic, tone, customer, product, purchase order), so it is generated only when a ticket is rendered.
Its tone matches the agent's sentiment label whenever one is set. People paste e-mail addresses,
phone numbers, card numbers and IBANs into tickets; so do these, and `TicketText.pii` lists each
value for scoring redaction.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from saas_simulator import pii

TASKS = (
    "download copies of past invoices",
    "add a second delivery address",
    "change the main contact on our account",
    "set up a recurring monthly order",
    "get volume pricing for next quarter",
    "track an order that has shipped",
    "request a certificate of conformity",
    "add a PO number to an invoice after the fact",
)
BILLING_ISSUES = (
    "wrong amount",
    "charged twice",
    "payment not applied",
    "missing credit note",
    "VAT number missing",
    "wrong currency",
)
SYMPTOMS = (
    "threads strip after a few turns",
    "the seal fails within a day",
    "several units arrived cracked",
    "it stops working after an hour",
    "the coating peels off",
    "parts are out of tolerance",
    "the packaging was crushed and the contents damaged",
)
NEGATIVE_LINES = (
    "This is the third time this has happened and our team is very frustrated.",
    "Honestly this is unacceptable for a supplier we have worked with for years.",
    "We are losing time on site because of this and I am disappointed.",
    "Nobody has replied to my last two emails, which is not great.",
    "If this is not fixed this week we will have to look at other suppliers.",
)
NEUTRAL_LINES = (
    "Let me know if you need anything else from our side.",
    "No rush, but an answer this week would help our planning.",
    "I could not find this in the help centre.",
    "Our purchasing team asked me to check with you.",
)
POSITIVE_LINES = (
    "Thanks a lot, your team has been great to work with.",
    "Really appreciate the quick turnaround last time.",
    "Great service as always, thank you!",
    "The new packaging is a big improvement, thanks for listening.",
)
GREETINGS = ("Hi", "Hello", "Hi team", "Good morning", "Dear support team", "Hello support")
SIGNOFFS = ("Best regards", "Thanks", "Kind regards", "Cheers", "Many thanks", "Regards")


@dataclass
class TicketFacts:
    """What the text is about; the renderer fills this from the ticket's columns and the catalog."""

    ticket_id: int
    topic: str
    tone: str
    first_name: str
    last_name: str
    email: str
    phone: str
    country: str
    company: str
    sku: str | None
    product: str | None
    po_number: str | None
    colleague_email: str


@dataclass
class TicketText:
    subject: str
    description: str
    pii: list[tuple[str, str]] = field(default_factory=list)


def ticket_text(seed: int, facts: TicketFacts) -> TicketText:
    text = random.Random(f"unified-assets-sim:{seed}:ticket-text:{facts.ticket_id}")
    writer = _Writer(text, facts)
    subject, body = TOPIC_WRITERS[facts.topic](writer)
    lines = [f"{text.choice(GREETINGS)},", "", body, writer.tone_line()]
    pii_lines = writer.contact_lines(facts.topic)
    if pii_lines:
        lines += ["", *pii_lines]
    lines += [
        "",
        f"{text.choice(SIGNOFFS)},",
        f"{facts.first_name} {facts.last_name}",
        facts.company,
    ]
    if text.random() < 0.25:
        lines.append(writer.note(facts.phone, "phone"))
    if text.random() < 0.03:
        subject = f"{subject} - call me on {writer.note(facts.phone, 'phone')}"
    return TicketText(subject, "\n".join(line for line in lines if line is not None), writer.found)


class _Writer:
    def __init__(self, rng: random.Random, facts: TicketFacts):
        self.rng = rng
        self.facts = facts
        self.found: list[tuple[str, str]] = []

    def note(self, value: str, kind: str) -> str:
        self.found.append((kind, value))
        return value

    def product_mention(self) -> str:
        facts = self.facts
        if not facts.sku:
            return "one of your products"
        letters, digits = facts.sku.split("-")
        return self.rng.choice(
            (
                facts.sku,
                f"{letters}{digits}".lower(),
                f"{letters} {digits}",
                f"{facts.product} ({facts.sku})",
                facts.product or facts.sku,
                f"item {facts.sku.lower()}",
            )
        )

    def tone_line(self) -> str:
        lines = {"negative": NEGATIVE_LINES, "neutral": NEUTRAL_LINES, "positive": POSITIVE_LINES}
        return self.rng.choice(lines[self.facts.tone])

    def contact_lines(self, topic: str) -> list[str]:
        rng, facts = self.rng, self.facts
        lines = []
        if rng.random() < 0.45:
            address = facts.email if rng.random() < 0.7 else facts.colleague_email
            lines.append(
                rng.choice(
                    (
                        f"You can reach me at {self.note(address, 'email')}.",
                        f"Please reply to {self.note(address, 'email')}, not the shared inbox.",
                        f"Please copy my colleague ({self.note(address, 'email')}) on your answer.",
                    )
                )
            )
        if rng.random() < 0.35:
            phone = facts.phone if rng.random() < 0.8 else pii.phone_number(rng, facts.country)
            lines.append(
                rng.choice(
                    (
                        f"Call me on {self.note(phone, 'phone')} if that is easier.",
                        f"My direct line is {self.note(phone, 'phone')}.",
                        f"Phone: {self.note(phone, 'phone')}",
                    )
                )
            )
        card_odds = {"billing": 0.35, "account_update": 0.4, "churn_risk": 0.05}.get(topic, 0.01)
        if rng.random() < card_odds:
            card = pii.card_number(rng)
            expiry = f"{rng.randint(1, 12):02d}/{rng.randint(27, 31)}"
            lines.append(
                rng.choice(
                    (
                        f"Please charge our company card {self.note(card, 'card')}, exp {expiry}.",
                        f"The payment was made with card {self.note(card, 'card')}.",
                        f"New card for the account: {self.note(card, 'card')} (expires {expiry})",
                    )
                )
            )
        iban_odds = {"billing": 0.2, "account_update": 0.45, "churn_risk": 0.05}.get(topic, 0.005)
        if rng.random() < iban_odds:
            country = (
                facts.country
                if facts.country in pii.IBAN_LAYOUTS
                else rng.choice(("DE", "GB", "NL"))
            )
            account = pii.iban(rng, country)
            lines.append(
                rng.choice(
                    (
                        f"Please refund to IBAN {self.note(account, 'iban')}.",
                        f"Our new bank account is {self.note(account, 'iban')}, please update it.",
                        f"Direct debit from {self.note(account, 'iban')} from next month please.",
                    )
                )
            )
        return lines


def _how_to(w: _Writer) -> tuple[str, str]:
    task = w.rng.choice(TASKS)
    subject = w.rng.choice((f"How do I {task}?", f"Question: {task}", f"Help needed to {task}"))
    return (
        subject,
        f"Could you explain how to {task}? We are trying to sort this out before month end.",
    )


def _billing(w: _Writer) -> tuple[str, str]:
    issue = w.rng.choice(BILLING_ISSUES)
    invoice = f"{w.rng.randint(10001, 29999)}"
    subject = w.rng.choice(
        (f"Invoice {invoice} - {issue}", f"Question about invoice {invoice}", f"Billing: {issue}")
    )
    return (
        subject,
        f"We have a problem with invoice {invoice}: {issue}. Can you send a corrected copy?",
    )


def _account_update(w: _Writer) -> tuple[str, str]:
    subject = w.rng.choice(
        ("Update our bank details", "New payment card on file", "Change of billing contact")
    )
    return subject, "Please update the payment details on our account as below."


def _product_question(w: _Writer) -> tuple[str, str]:
    product = w.product_mention()
    subject = w.rng.choice(
        (
            f"Availability of {product}",
            f"Is {product} suitable for outdoor use?",
            f"Spec sheet for {product}",
        )
    )
    return (
        subject,
        f"We are planning a larger order of {product}. Is it in stock and is there a data sheet?",
    )


def _praise(w: _Writer) -> tuple[str, str]:
    subject = w.rng.choice(("Thank you!", "Great delivery this week", "Kudos to your team"))
    product = w.product_mention() if w.facts.sku else "our last order"
    return subject, f"Just wanted to say thanks: {product} arrived early and exactly as ordered."


def _delivery_question(w: _Writer) -> tuple[str, str]:
    subject = w.rng.choice(
        ("When will our order arrive?", "Delivery date question", "Tracking number please")
    )
    return (
        subject,
        "Could you confirm the delivery date of our open order and send a tracking number?",
    )


def _product_issue(w: _Writer) -> tuple[str, str]:
    product, symptom = w.product_mention(), w.rng.choice(SYMPTOMS)
    subject = w.rng.choice(
        (f"Problem with {product}", f"{product}: {symptom}", f"{product} not as expected")
    )
    return (
        subject,
        f"We have an issue with {product}: {symptom}. Can you advise or send replacements?",
    )


def _defect(w: _Writer) -> tuple[str, str]:
    product, symptom = w.product_mention(), w.rng.choice(SYMPTOMS)
    lot = f"LOT-{w.rng.randint(24, 26)}-{w.rng.randint(1000, 9999)}"
    subject = w.rng.choice(
        (f"Defective {product}", f"{product} faulty - {symptom}", f"Batch problem: {product}")
    )
    body = (
        f"The latest delivery of {product} (lot {lot}) is faulty: {symptom}. "
        "We have stopped using it and need replacements or a credit."
    )
    return subject, body


def _late_delivery(w: _Writer) -> tuple[str, str]:
    po, product = w.facts.po_number or "our order", w.product_mention()
    subject = w.rng.choice(
        (f"Order {po} still not delivered", f"Late delivery: PO {po}", f"Where is PO {po}?")
    )
    return (
        subject,
        f"PO {po} ({product}) was due days ago and has not arrived. Our crew is waiting on it.",
    )


def _churn_risk(w: _Writer) -> tuple[str, str]:
    subject = w.rng.choice(
        ("Considering other suppliers", "Please close our account", "Unhappy with recent service")
    )
    return subject, "After the last few months we are reviewing whether to keep ordering from you."


TOPIC_WRITERS = {
    "how_to": _how_to,
    "billing": _billing,
    "account_update": _account_update,
    "product_question": _product_question,
    "praise": _praise,
    "delivery_question": _delivery_question,
    "product_issue": _product_issue,
    "defect": _defect,
    "late_delivery": _late_delivery,
    "churn_risk": _churn_risk,
}


class TextCache:
    """Ticket texts by ticket record (every version shares its ticket's text); bounded, thread-safe."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self._items: OrderedDict[int, TicketText] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, record: int, write: Callable[[], TicketText]) -> TicketText:
        """The cached text of `record`, or the one `write` makes (then kept, oldest evicted first)."""
        with self._lock:
            cached = self._items.get(record)
        if cached is not None:
            return cached
        text = write()
        with self._lock:
            self._items[record] = text
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return text

"""Faults injected on purpose, reproducibly: which request of which system fails, and how.

A `FaultPlan` is a list of `FaultSpec`s. For each data request the server numbers the request per
system (1, 2, 3, ...) and asks the plan; the answer is a pure function of (plan seed, system,
request number), so a run with the same plan and the same sequence of requests sees the same faults.
At most one fault applies to a request (the first spec that triggers, in plan order). Faults never
change the world itself, except `concurrent_update`, which adds real versions that the world's
ground truth then shows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from saas_simulator.world import SYSTEMS

FAULT_KINDS = (
    "rate_limit",
    "rate_limit_no_retry_after",
    "server_error",
    "connection_reset",
    "read_timeout",
    "truncated_json",
    "malformed_json",
    "html_error_page",
    "duplicate_records",
    "concurrent_update",
    "expired_token",
    "schema_drift",
    # A hostile export (the support system's cursor paging): the next cursor repeats the one asked
    # for, or pages come back empty while still saying there is more, each with a new cursor.
    "repeated_cursor",
    "empty_pages_with_more",
    # The normal answer, its body sent one byte at a time (`trickle_s` apart): no single read waits long.
    "trickled_body",
    # The normal answer followed by `oversize_mb` MB of JSON whitespace: still valid, and huge.
    "oversized_page",
    # A 302 to the same path on the `elsewhere` host, where the client's credentials must never go.
    "redirect_elsewhere",
    # The support export's next-page links (`after_url`, `before_url`) on the `elsewhere` host.
    "foreign_next_link",
    # The page's first record without its id, or with one that is not an id (`A-<id>`).
    "record_without_id",
    "record_id_not_an_id",
    # QuickBooks' OAuth2 token endpoint answers 503 (with Retry-After). Its requests are numbered apart
    # from the data requests: `at:1` is the first token request.
    "token_endpoint_unavailable",
)
TOKEN_FAULTS = ("token_endpoint_unavailable",)
RECORD_FAULTS = ("record_without_id", "record_id_not_an_id")
PAGING_FAULTS = ("repeated_cursor", "empty_pages_with_more")
DRIFT_MODES = ("new_field", "renamed_field", "changed_type")
SERVER_ERROR_STATUSES = (500, 502, 503)
PLAN_OPTIONS = {
    "seed": "seed",
    "timeout": "timeout_delay_s",
    "retry_after": "retry_after_s",
    "duplicates": "duplicate_count",
    "touches": "concurrent_update_count",
    "trickle": "trickle_s",
    "oversize": "oversize_mb",
    "elsewhere": "elsewhere",
}
DEFAULT_ELSEWHERE = "http://elsewhere.invalid"


def _uniform(seed: int, system: str, request_number: int, salt: str) -> float:
    digest = hashlib.blake2b(
        f"{seed}:{system}:{request_number}:{salt}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True)
class FaultSpec:
    """One kind of fault: with `probability` per request and/or at given 1-based request numbers."""

    kind: str
    probability: float = 0.0
    systems: tuple[str, ...] = SYSTEMS
    at_requests: tuple[int, ...] = ()
    mode: str | None = None  # schema_drift only: new_field | renamed_field | changed_type

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}"
            )
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(
                f"{self.kind}: probability must be in [0, 1], got {self.probability!r}"
            )
        systems = (self.systems,) if isinstance(self.systems, str) else tuple(self.systems)
        unknown = [s for s in systems if s not in SYSTEMS]
        if unknown:
            raise ValueError(
                f"{self.kind}: unknown system {unknown[0]!r}; use {', '.join(SYSTEMS)}"
            )
        object.__setattr__(self, "systems", systems)
        at = tuple(int(n) for n in self.at_requests)
        if any(n < 1 for n in at):
            raise ValueError(f"{self.kind}: request numbers start at 1, got {at}")
        object.__setattr__(self, "at_requests", at)
        if self.kind == "schema_drift":
            mode = self.mode or "new_field"
            if mode not in DRIFT_MODES:
                raise ValueError(
                    f"schema_drift mode {mode!r} is unknown; use one of {', '.join(DRIFT_MODES)}"
                )
            object.__setattr__(self, "mode", mode)
        elif self.mode is not None:
            raise ValueError(
                f"{self.kind} takes no mode (only schema_drift does), got {self.mode!r}"
            )

    def triggers(self, seed: int, system: str, request_number: int) -> bool:
        if system not in self.systems:
            return False
        if request_number in self.at_requests:
            return True
        return (
            self.probability > 0
            and _uniform(seed, system, request_number, self.kind) < self.probability
        )

    def __str__(self) -> str:
        name = f"{self.kind}:{self.mode}" if self.kind == "schema_drift" else self.kind
        if self.systems != SYSTEMS:
            name += "@" + "+".join(self.systems)
        parts = []
        if self.probability:
            parts.append(f"{name}={self.probability:g}")
        if self.at_requests:
            parts.append(f"{name}=at:" + "+".join(str(n) for n in self.at_requests))
        return ",".join(parts) or f"{name}=0"


@dataclass(frozen=True)
class FaultPlan:
    """Which faults to inject, reproducibly; `FaultPlan()` injects none."""

    specs: tuple[FaultSpec, ...] = field(default_factory=tuple)
    seed: int = 0
    timeout_delay_s: float = 2.0
    retry_after_s: int = 1
    duplicate_count: int = 2
    concurrent_update_count: int = 2
    trickle_s: float = 0.05
    oversize_mb: float = 50.0
    elsewhere: str = (
        DEFAULT_ELSEWHERE  # the foreign host of redirect_elsewhere and foreign_next_link
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "specs", tuple(self.specs))
        if self.timeout_delay_s < 0 or self.retry_after_s < 0 or self.trickle_s < 0:
            raise ValueError("timeout_delay_s, retry_after_s and trickle_s must not be negative")
        if self.oversize_mb < 0:
            raise ValueError("oversize_mb must not be negative")
        if not self.elsewhere.startswith(("http://", "https://")) or "/" in self.elsewhere[8:]:
            raise ValueError(f"elsewhere must be a scheme and host, got {self.elsewhere!r}")
        if self.duplicate_count < 1 or self.concurrent_update_count < 1:
            raise ValueError("duplicate_count and concurrent_update_count must be at least 1")

    def __bool__(self) -> bool:
        return bool(self.specs)

    def decide(
        self, system: str, request_number: int, token_request: bool = False
    ) -> FaultSpec | None:
        """The fault for this request, or None: a function of (seed, system, request number). Data
        requests and token requests are numbered apart, and each meets only its own kinds."""
        for spec in self.specs:
            if (spec.kind in TOKEN_FAULTS) != token_request:
                continue
            if spec.triggers(self.seed, system, request_number):
                return spec
        return None

    def server_error_status(self, system: str, request_number: int) -> int:
        pick = _uniform(self.seed, system, request_number, "status")
        return SERVER_ERROR_STATUSES[int(pick * len(SERVER_ERROR_STATUSES))]

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> FaultPlan:
        """Read the CLI/environment form, e.g. `server_error=0.1,rate_limit=0.05`.

        Items are comma-separated `<kind>[:<mode>][@<system>[+<system>]]=<value>` where value is a
        probability (`0.1`) or request numbers (`at:2+5`); plan options are `seed=`, `timeout=`
        (seconds a read_timeout delays), `retry_after=`, `duplicates=`, `touches=`, `trickle=` (seconds
        between the bytes of a trickled body), `oversize=` (MB an oversized page adds) and `elsewhere=`
        (the foreign host, e.g. `http://127.0.0.1:9999`).
        """
        specs: list[FaultSpec] = []
        options: dict[str, float] = {"seed": seed}
        elsewhere = DEFAULT_ELSEWHERE
        for item in filter(None, (part.strip() for part in text.split(","))):
            try:
                name, sep, value = item.partition("=")
                if not sep or not value.strip():
                    raise ValueError("expected <kind>=<probability> or <kind>=at:<n>+<n>")
                name, value = name.strip(), value.strip()
                if name == "elsewhere":
                    elsewhere = value
                    continue
                if name in PLAN_OPTIONS:
                    options[name] = float(value)
                    continue
                specs.append(_parse_spec(name, value))
            except ValueError as error:
                raise ValueError(f"bad fault setting {item!r}: {error}") from None
        return cls(
            tuple(specs),
            seed=int(options["seed"]),
            timeout_delay_s=float(options.get("timeout", 2.0)),
            retry_after_s=int(options.get("retry_after", 1)),
            duplicate_count=int(options.get("duplicates", 2)),
            concurrent_update_count=int(options.get("touches", 2)),
            trickle_s=float(options.get("trickle", 0.05)),
            oversize_mb=float(options.get("oversize", 50.0)),
            elsewhere=elsewhere,
        )

    def __str__(self) -> str:
        return ",".join(str(spec) for spec in self.specs)


def _parse_spec(name: str, value: str) -> FaultSpec:
    kind, _, systems_text = name.partition("@")
    kind, _, mode = kind.partition(":")
    systems = tuple(s.strip() for s in systems_text.split("+")) if systems_text else SYSTEMS
    if value.startswith("at:"):
        numbers = value[3:].split("+")
        if not all(n.strip().isdigit() for n in numbers):
            raise ValueError(f"request numbers must be positive integers, got {value[3:]!r}")
        return FaultSpec(
            kind, systems=systems, at_requests=tuple(int(n) for n in numbers), mode=mode or None
        )
    try:
        probability = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is neither a probability nor at:<n>+<n>") from None
    return FaultSpec(kind, probability, systems=systems, mode=mode or None)

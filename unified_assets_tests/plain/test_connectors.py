"""Each connector against every fault the simulator can inject: nothing lost, or a clear error.

"Nothing lost" is checked against the simulator's ground truth: the distinct (id, updated_at) versions a
connector returns for a window equal exactly the versions that exist there, with and without faults.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from saas_simulator.clock import SimClock
from saas_simulator.credentials import SimCredentials
from saas_simulator.faults import FAULT_KINDS, FaultPlan, FaultSpec
from saas_simulator.ratelimit import RateLimit
from saas_simulator.world import World
from unified_assets.sources import coupa, quickbooks, zendesk
from unified_assets.sources.http import CredentialsRejected, SourceError
from unified_assets.sources.paging import TIE_OVERLAP, Window, iso_utc
from unified_assets_tests.support.resources import (
    FAST_RETRIES,
    SHORT_READ_TIMEOUT,
    source_resources,
)
from unified_assets_tests.support.simulators import FROZEN_AT, frozen_world, serving

WINDOW = Window(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))
TWO_WEEKS = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC))
RESOURCE_KEY = {
    "accounting": "accounting_api",
    "purchasing": "purchasing_api",
    "support": "support_api",
}
UPDATED_AT = {
    "accounting": quickbooks.invoice_updated_at,
    "purchasing": coupa.purchase_order_updated_at,
    "support": zendesk.ticket_updated_at,
}
ID_FIELD = {"accounting": "Id", "purchasing": "id", "support": "id"}
# Small pages so that every window spans several requests and faults land mid-pagination.
SMALL_PAGES = {"accounting": 20, "purchasing": 10, "support": 3}
# Every fault kind is covered here: the ones a correct client absorbs by retrying are in the matrix below,
# the others have tests of their own (their expected outcome differs).
TESTED_SEPARATELY = {
    "duplicate_records",
    "concurrent_update",
    "expired_token",
    "schema_drift",
    "repeated_cursor",
    "empty_pages_with_more",
    "trickled_body",
    "oversized_page",
    "redirect_elsewhere",
    "foreign_next_link",
    "record_without_id",
    "record_id_not_an_id",
    "token_endpoint_unavailable",
}
RECOVERABLE = [kind for kind in FAULT_KINDS if kind not in TESTED_SEPARATELY]
SYSTEMS = list(RESOURCE_KEY)
LOG = logging.getLogger("connector-test")


def extract(server, storage, system: str, window: Window = WINDOW, **overrides):
    overrides.setdefault("page_size", SMALL_PAGES[system])
    resource = source_resources(server, storage, **overrides)[RESOURCE_KEY[system]]
    client = resource.open_client(LOG)
    try:
        pages = list(client.extract(window))
    finally:
        client.close()
    return pages


def versions(system: str, pages) -> set[tuple[str, datetime]]:
    return {
        (str(record[ID_FIELD[system]]), UPDATED_AT[system](record).astimezone(UTC))
        for page in pages
        for record in page.records
    }


def truth(world: World, system: str, window: Window = WINDOW, as_of: datetime = FROZEN_AT):
    frame = world.ground_truth(
        system, as_of=as_of, updated_from=window.start, updated_to=window.end, include_records=False
    )
    return {
        (str(i), t.to_pydatetime().astimezone(UTC))
        for i, t in zip(frame["id"], frame["updated_at"], strict=True)
    }


@pytest.mark.parametrize("system", SYSTEMS)
def test_without_faults_a_window_is_exactly_the_ground_truth(demo_config, system, storage):
    world = frozen_world(demo_config)
    with serving(world) as server:
        pages = extract(server, storage, system)
    assert len(pages) > 1, "the window must span several pages"
    assert versions(system, pages) == truth(world, system)


@pytest.mark.parametrize("kind", RECOVERABLE)
@pytest.mark.parametrize("system", SYSTEMS)
def test_recoverable_faults_lose_nothing(demo_config, system, kind, storage):
    world = frozen_world(demo_config)
    plan = FaultPlan((FaultSpec(kind, systems=(system,), at_requests=(2, 3, 5)),), seed=3)
    # Without the vendor's own request limit (tested on its own): Zendesk's is 10 a minute, which this walk
    # and its three faults meet exactly, so one retry more (a page slowed past the read timeout by a busy
    # machine) would turn into minutes of 429s.
    with serving(world, faults=plan, rate_limits={system: None}) as server:
        pages = extract(server, storage, system, **SHORT_READ_TIMEOUT)
        injected = server.stats[system]["faults"].get(kind, 0)
    assert injected > 0
    assert versions(system, pages) == truth(world, system)
    assert sum(page.retries for page in pages) >= injected


# The simulator widens a page backwards from a non-zero offset or a cursor. A keyset walk asks for a
# non-zero offset only inside a group of records sharing one timestamp, so the offset-paged systems are
# tested on their batch jobs: the quarter close (accounting) and the monthly ERP export (purchasing).
DUPLICATE_WINDOWS = {
    "accounting": (datetime(2026, 4, 2, tzinfo=UTC), 500),
    "purchasing": (datetime(2026, 4, 1, tzinfo=UTC), 50),
    "support": (datetime(2026, 3, 2, tzinfo=UTC), 3),
}


@pytest.mark.parametrize("system", SYSTEMS)
def test_records_served_twice_are_kept_once(demo_config, system, storage):
    day, page_size = DUPLICATE_WINDOWS[system]
    window = Window(day, day + timedelta(days=1))
    world = World(demo_config, clock=SimClock.frozen(day + timedelta(days=1, hours=1)))
    plan = FaultPlan(
        (FaultSpec("duplicate_records", systems=(system,), probability=0.5),),
        duplicate_count=TIE_OVERLAP + 4,
    )
    with serving(world, faults=plan) as server:
        pages = extract(server, storage, system, window, page_size=page_size)
        injected = server.stats[system]["faults"].get("duplicate_records", 0)
    assert injected > 0
    served = sum(len(page.records) for page in pages)
    landed = versions(system, pages)
    assert served > len(landed), "some records should have been served twice"
    assert landed == truth(world, system, window, as_of=world.now())


@pytest.mark.parametrize("mode", ["new_field", "renamed_field", "changed_type"])
@pytest.mark.parametrize("system", SYSTEMS)
def test_schema_drift_loses_no_record(demo_config, system, mode, storage):
    world = frozen_world(demo_config)
    plan = FaultPlan((FaultSpec("schema_drift", systems=(system,), at_requests=(2,), mode=mode),))
    with serving(world, faults=plan) as server:
        pages = extract(server, storage, system)
    assert versions(system, pages) == truth(world, system)


@pytest.mark.parametrize("system", SYSTEMS)
def test_records_updated_mid_extraction_are_not_skipped(demo_config, system, storage):
    """Updated records leave a closed window; the ones behind them must still be read."""
    world = frozen_world(demo_config)
    plan = FaultPlan((FaultSpec("concurrent_update", systems=(system,), probability=1.0),))
    with serving(world, faults=plan) as server:
        pages = extract(server, storage, system)
        touched = server.stats[system]["faults"].get("concurrent_update", 0)
    assert touched > 0
    before = truth(world, system, as_of=FROZEN_AT - timedelta(seconds=1))
    after = truth(world, system)
    assert after < before, "records should have moved out of the window"
    landed = versions(system, pages)
    assert after <= landed <= before


def test_quickbooks_windows_are_exact_in_the_companys_time_from_their_first_hour(
    demo_config, storage
):
    """QuickBooks writes timestamps in the company's zone (here UTC-8), the platform's windows are UTC
    days. The first eight hours of a UTC day are the evening before on the company's calendar, so their
    invoices' `LastUpdatedTime` reads as the previous date: a client comparing bounds as text drops them.
    Extracted as a window's first hours and as its whole day, nothing is lost or added."""
    world = frozen_world(demo_config)
    day = datetime(2026, 3, 3, tzinfo=UTC)
    first_hours = Window(day, day + timedelta(hours=8))
    whole_day = Window(day, day + timedelta(days=1))
    with serving(world) as server:
        early = extract(server, storage, "accounting", window=first_hours)
        daily = extract(server, storage, "accounting", window=whole_day)
    stamps = [record["MetaData"]["LastUpdatedTime"] for page in early for record in page.records]
    assert stamps and all(stamp.startswith("2026-03-02T") for stamp in stamps), stamps[:3]
    assert all(stamp < iso_utc(day) for stamp in stamps), "as text, each sorts before the window"
    assert versions("accounting", early) == truth(world, "accounting", window=first_hours)
    assert versions("accounting", daily) == truth(world, "accounting", window=whole_day)


def test_purchase_orders_read_in_slices_stay_within_coupas_limit_together(demo_config, storage):
    """Four connections reading one window at once share one pacer: the vendor never answers 429. The
    limit is made tight (10 a second) so that four unpaced slices would meet it at once. The pacer
    spaces requests a little wider than the limit, as the platform's default does under Coupa's 25 a
    second: the vendor counts arrivals, and a request delayed on the way arrives with the next."""
    world = frozen_world(demo_config)
    per_second = RateLimit(10, 1.0)
    with serving(world, rate_limits={"purchasing": per_second}) as server:
        resource = source_resources(
            server,
            storage,
            page_size=20,
            window_slices=4,
            slices_max_requests=6,
            slices_per_seconds=1.0,
        )["purchasing_api"]
        with resource.open_extractor(LOG) as client:
            pages = list(client.extract(TWO_WEEKS))
        stats = server.stats["purchasing"]
    assert stats["requests"] > per_second.requests, "the read must outlast the limit's window"
    assert stats["rate_limited"] == 0
    assert sum(page.retries for page in pages) == 0
    assert versions("purchasing", pages) == truth(world, "purchasing", window=TWO_WEEKS)


def test_quickbooks_refreshes_an_expired_access_token_and_continues(demo_config, storage):
    world = frozen_world(demo_config)
    plan = FaultPlan((FaultSpec("expired_token", systems=("accounting",), at_requests=(2, 4)),))
    with serving(world, faults=plan) as server:
        pages = extract(server, storage, "accounting")
        refreshes = server.stats["accounting"]["token_refreshes"]
    assert refreshes >= 3
    assert versions("accounting", pages) == truth(world, "accounting")


def test_quickbooks_retries_a_token_endpoint_that_is_briefly_unavailable(demo_config, storage):
    world = frozen_world(demo_config)
    plan = FaultPlan(
        (FaultSpec("token_endpoint_unavailable", systems=("accounting",), at_requests=(1, 2)),),
        retry_after_s=0,
    )
    with serving(world, faults=plan) as server:
        pages = extract(server, storage, "accounting")
        stats = server.stats["accounting"]
    assert stats["faults"]["token_endpoint_unavailable"] == 2
    assert (stats["token_requests"], stats["token_refreshes"]) == (3, 1)
    assert versions("accounting", pages) == truth(world, "accounting")


def test_a_token_endpoint_that_stays_down_fails_the_extract_naming_it(demo_config, storage):
    plan = FaultPlan(
        (FaultSpec("token_endpoint_unavailable", systems=("accounting",), probability=1.0),),
        retry_after_s=0,
    )
    with serving(frozen_world(demo_config), faults=plan) as server:
        with pytest.raises(
            SourceError, match=r"token endpoint http://.*/tokens/bearer answered HTTP 503"
        ):
            extract(server, storage, "accounting")
        assert server.stats["accounting"]["token_requests"] == 1 + FAST_RETRIES["max_retries"]
        assert server.stats["accounting"]["requests"] == 0


def test_quickbooks_clients_of_one_process_share_an_access_token_until_it_nears_expiry(
    demo_config, storage
):
    """A sensor opens a client every minute; the token endpoint is asked once an hour, not each time."""
    with serving(frozen_world(demo_config)) as server:
        for _ in range(3):
            extract(
                server,
                storage,
                "accounting",
                window=Window(WINDOW.start, WINDOW.start + timedelta(hours=1)),
            )
        assert server.stats["accounting"]["token_refreshes"] == 1


def test_an_access_token_is_reused_until_five_minutes_before_it_expires():
    now = [0.0]
    tokens = quickbooks.AccessTokens(clock=lambda: now[0])
    key = ("https://token", "realm", "app", "digest")
    tokens.put(key, "token-1", expires_in_s=3600)
    now[0] = 3600 - 301
    assert tokens.get(key) == "token-1"
    now[0] = 3600 - 299
    assert tokens.get(key) is None
    tokens.put(key, "token-2", expires_in_s=3600)
    tokens.forget(key)
    assert tokens.get(key) is None


def test_every_fault_kind_is_covered():
    assert set(RECOVERABLE) | TESTED_SEPARATELY == set(FAULT_KINDS)


@pytest.mark.parametrize(("system", "label"), [("purchasing", "Coupa"), ("support", "Zendesk")])
def test_a_rejected_api_key_is_reported_as_such(demo_config, system, label, storage):
    world = frozen_world(demo_config)
    plan = FaultPlan((FaultSpec("expired_token", systems=(system,), at_requests=(1,)),))
    with (
        serving(world, faults=plan) as server,
        pytest.raises(
            CredentialsRejected, match=f"credentials rejected for {system} \\({label}\\)"
        ),
    ):
        extract(server, storage, system)


def test_wrong_credentials_are_rejected_without_echoing_them(demo_config, caplog, storage):
    wrong = SimCredentials.generate(seed=99)
    world = frozen_world(demo_config)
    caplog.set_level(logging.DEBUG)
    with serving(world) as server:
        resources = source_resources(server, storage, credentials=wrong)
        for system, key in RESOURCE_KEY.items():
            resource = resources[key]
            client = resource.open_client(LOG)
            with pytest.raises(
                CredentialsRejected, match=f"credentials rejected for {system}"
            ) as raised:
                list(client.extract(WINDOW))
            for secret in wrong.secret_values():
                assert secret not in str(raised.value)
    for secret in wrong.secret_values():
        assert secret not in caplog.text


@pytest.mark.parametrize(
    "kind", ["server_error", "malformed_json", "html_error_page", "connection_reset"]
)
def test_a_fault_that_never_clears_names_system_endpoint_and_page(demo_config, kind, storage):
    world = frozen_world(demo_config)
    plan = FaultPlan((FaultSpec(kind, systems=("purchasing",), at_requests=tuple(range(2, 40))),))
    with serving(world, faults=plan) as server, pytest.raises(SourceError) as raised:
        extract(server, storage, "purchasing", max_retries=2)
    message = str(raised.value)
    assert message.startswith("purchasing (Coupa): ")
    assert "/coupa/api/purchase_orders, offset " in message
    assert "after 2 retries" in message


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("repeated_cursor", "after_cursor repeats the one page 1 gave"),
        ("empty_pages_with_more", "5 empty pages in a row"),
    ],
)
def test_an_export_that_would_never_end_fails_naming_the_page(demo_config, kind, says, storage):
    """The support export's paging is the server's: a cursor that does not advance, or empty pages that
    always say there is more, would keep a walk going forever. It fails within a few requests instead,
    naming system, endpoint and page."""
    plan = FaultPlan((FaultSpec(kind, systems=("support",), probability=1.0),))
    with serving(frozen_world(demo_config), faults=plan, rate_limits={"support": None}) as server:
        with pytest.raises(SourceError) as raised:
            extract(server, storage, "support")
        requests = server.stats["support"]["requests"]
    message = str(raised.value)
    assert message.startswith("support (Zendesk): ") and says in message, message
    assert "/api/v2/incremental/tickets/cursor.json, page " in message
    assert requests <= 6


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_retry_after_longer_than_a_run_waits_fails_at_once_saying_when_to_retry(
    demo_config, system, storage
):
    """A 429 asking for an hour is not waited out (capped, urllib3 would ask again eight times, holding
    the run for many minutes): the extraction fails on that request, naming the wait and when to re-run."""
    plan = FaultPlan(
        (FaultSpec("rate_limit", systems=(system,), at_requests=(2,)),), retry_after_s=3600
    )
    with serving(frozen_world(demo_config), faults=plan, rate_limits={system: None}) as server:
        with pytest.raises(SourceError) as raised:
            extract(server, storage, system)
        requests = server.stats[system]["requests"]
    message = str(raised.value)
    assert "HTTP 429: the vendor asks to wait 3600 s (Retry-After)" in message, message
    assert "re-run after " in message and " UTC" in message
    assert requests == 2  # no retry of the throttled request


# A page trickled a byte at a time 0.05 s apart takes minutes; each read gets its byte well within the
# read timeout. The deadline on the whole response is what ends it.
TRICKLE_DEADLINE = {"response_deadline_s": 1.0, "read_timeout_s": 2.0}


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_trickled_body_is_cut_at_the_deadline_and_asked_again(demo_config, system, storage):
    world = frozen_world(demo_config)
    plan = FaultPlan((FaultSpec("trickled_body", systems=(system,), at_requests=(2,)),))
    with serving(world, faults=plan, rate_limits={system: None}) as server:
        pages = extract(server, storage, system, **TRICKLE_DEADLINE)
        assert server.stats[system]["faults"] == {"trickled_body": 1}
    assert versions(system, pages) == truth(world, system)
    assert sum(page.retries for page in pages) >= 1


def test_a_body_that_always_trickles_fails_naming_the_deadline_and_the_page(demo_config, storage):
    plan = FaultPlan((FaultSpec("trickled_body", systems=("purchasing",), probability=1.0),))
    with serving(
        frozen_world(demo_config), faults=plan, rate_limits={"purchasing": None}
    ) as server:
        with pytest.raises(SourceError) as raised:
            extract(server, storage, "purchasing", max_retries=2, **TRICKLE_DEADLINE)
        requests = server.stats["purchasing"]["requests"]
    message = str(raised.value)
    assert message.startswith("purchasing (Coupa): no whole response in time after 2 retries")
    assert "still arriving 1 s after the request" in message and "offset 0" in message, message
    assert requests == 3


# Where a page's request is named in errors, per system.
REQUEST_NAMED = {
    "accounting": "/v3/company/{realm}/query, rows from ",
    "purchasing": "/coupa/api/purchase_orders, offset ",
    "support": "/api/v2/incremental/tickets/cursor.json, page ",
}


def request_named(system: str, message: str) -> bool:
    before, _, after = REQUEST_NAMED[system].partition("{realm}")
    return before in message and after in message


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_page_over_the_size_limit_is_refused_unread_naming_the_page(demo_config, system, storage):
    """A 50 MB page (the normal answer and 50 MB of JSON whitespace) is over the 32 MB a response may
    be: refused by its Content-Length before it is read or retried, naming the setting to change."""
    plan = FaultPlan((FaultSpec("oversized_page", systems=(system,), at_requests=(2,)),))
    with serving(frozen_world(demo_config), faults=plan, rate_limits={system: None}) as server:
        with pytest.raises(SourceError) as raised:
            extract(server, storage, system)
        requests = server.stats[system]["requests"]
    message = str(raised.value)
    assert "the response is 50.0 MB, over the 32 MB a response may be (max_response_mb)" in message
    assert "page_size" in message and request_named(system, message), message
    assert requests == 2


def test_a_large_page_within_the_limit_is_read_whole(demo_config, storage):
    world = frozen_world(demo_config)
    plan = FaultPlan((FaultSpec("oversized_page", systems=("support",), at_requests=(2,)),))
    with serving(world, faults=plan, rate_limits={"support": None}) as server:
        pages = extract(server, storage, "support", max_response_mb=64)
        assert server.stats["support"]["faults"] == {"oversized_page": 1}
    assert versions("support", pages) == truth(world, "support")


class Trap(ThreadingHTTPServer):
    """Another host: records every request that reaches it (what a leaked credential would be sent
    with) and answers an empty page."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                trap.requests.append({"path": self.path, **dict(self.headers.items())})
                body = json.dumps({"tickets": [], "end_of_stream": True}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def trap() -> Iterator[Trap]:
    server = Trap()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_redirect_to_another_host_is_not_followed_so_no_credential_leaves(
    demo_config, system, storage, trap
):
    """`requests` follows redirects, and on a change of host drops only `Authorization`: Coupa's
    `X-COUPA-API-KEY` went along to whatever host a 302 named. No redirect is followed now; the error
    names where it pointed."""
    plan = FaultPlan(
        (FaultSpec("redirect_elsewhere", systems=(system,), at_requests=(2,)),),
        elsewhere=trap.url,
    )
    with (
        serving(frozen_world(demo_config), faults=plan, rate_limits={system: None}) as server,
        pytest.raises(SourceError) as raised,
    ):
        extract(server, storage, system)
    message = str(raised.value)
    assert f"HTTP 302 redirect to {trap.url}/" in message, message
    assert "not followed (another host: the credentials are sent to the configured host only)" in (
        message
    )
    assert request_named(system, message), message
    assert trap.requests == []


def test_next_page_links_on_another_host_are_never_followed(demo_config, storage, trap):
    """Zendesk's export pages carry `after_url`; the client builds each next request from its own
    base URL and the page's cursor instead, so a link naming another host is never asked, and the
    window is still read whole."""
    world = frozen_world(demo_config)
    plan = FaultPlan(
        (FaultSpec("foreign_next_link", systems=("support",), probability=1.0),),
        elsewhere=trap.url,
    )
    with serving(world, faults=plan, rate_limits={"support": None}) as server:
        pages = extract(server, storage, "support")
        assert server.stats["support"]["faults"]["foreign_next_link"] == len(pages)
    assert len(pages) > 1
    assert versions("support", pages) == truth(world, "support")
    assert trap.requests == []


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("record_without_id", "record 1 of the page has no '{id}' field"),
        ("record_id_not_an_id", "record 1 of the page has {id}='A-"),
    ],
)
@pytest.mark.parametrize("system", SYSTEMS)
def test_a_record_without_a_usable_id_fails_naming_record_field_and_page(
    demo_config, system, kind, says, storage
):
    """A record's id is how its versions are kept once: a page holding one without a usable id stops
    the extraction, naming the record, the field and the request, instead of landing a row no later
    version can replace."""
    plan = FaultPlan((FaultSpec(kind, systems=(system,), at_requests=(2,)),))
    with serving(frozen_world(demo_config), faults=plan, rate_limits={system: None}) as server:
        with pytest.raises(SourceError) as raised:
            extract(server, storage, system)
        assert server.stats[system]["faults"] == {kind: 1}
    message = str(raised.value)
    assert says.format(id=ID_FIELD[system]) in message, message
    assert request_named(system, message), message


def test_rate_limits_are_honoured_not_fatal(demo_config, storage):
    """Zendesk's export allows 10 requests a minute; one a second here forces real 429s (at three a
    second, a loaded machine can walk the pages slower than the limit and meet none)."""
    world = frozen_world(demo_config)
    limit = {"support": RateLimit(1, 1, retry_after=True)}  # every page but the first waits
    with serving(world, rate_limits=limit) as server:
        pages = extract(server, storage, "support", page_size=5)
        limited = server.stats["support"]["rate_limited"]
    assert limited > 0
    assert versions("support", pages) == truth(world, "support")


def test_a_tie_group_larger_than_a_page_is_read_completely(demo_config, storage):
    """The quarter-close batch job stamps ~2,400 invoices with one LastUpdatedTime."""
    world = World(demo_config, clock=SimClock.frozen(datetime(2026, 4, 2, 6, tzinfo=UTC)))
    window = Window(datetime(2026, 4, 2, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC))
    expected = truth(world, "accounting", window, as_of=world.now())
    assert len({moment for _, moment in expected}) < len(expected) / 10, "expected one big tie"
    with serving(world) as server:
        pages = extract(server, storage, "accounting", window, page_size=1000)
    assert versions("accounting", pages) == expected


@pytest.mark.parametrize(
    "kind", ["server_error", "rate_limit", "connection_reset", "truncated_json", "html_error_page"]
)
def test_a_write_back_survives_faults_and_lands_once(demo_config, kind, storage):
    plan = FaultPlan((FaultSpec(kind, systems=("purchasing",), at_requests=(1, 2)),))
    with serving(frozen_world(demo_config), faults=plan) as server:
        client = source_resources(server, storage)["purchasing_api"].open_client(LOG)
        try:
            assert client.set_item_custom_fields(3004, {"safety-stock": 7}) == {"safety-stock": 7}
            assert client.item_custom_fields(3004) == {"safety-stock": 7}
        finally:
            client.close()
        assert server.stats["purchasing"]["faults"].get(kind, 0) > 0
        assert [u["fields"] for u in server.items.updates()] == [{"safety-stock": 7}]


def test_a_ticket_window_that_has_not_started_at_the_source_is_empty_not_an_error(
    demo_config, storage
):
    """Zendesk refuses a start_time under a minute old; a refresh of today's partition just after midnight
    asks for one. Nothing can have been updated in it yet."""
    future = Window(FROZEN_AT + timedelta(minutes=5), FROZEN_AT + timedelta(days=1))
    with serving(frozen_world(demo_config)) as server:
        pages = list(extract(server, storage, "support", future))
    assert [(page.number, page.records, page.received) for page in pages] == [(1, [], 0)]

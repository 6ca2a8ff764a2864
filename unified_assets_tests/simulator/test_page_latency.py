"""The simulator's per-page latency: each data request waits, concurrently, without holding others up."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from saas_simulator import SimulatorServer, World
from saas_simulator.__main__ import build_parser
from saas_simulator.environment import (
    SIM_PAGE_LATENCY_VAR,
    SimSettingError,
    simulator_page_latency_s,
)
from unified_assets_tests.support.simulator_requests import qbo_query, qbo_token
from unified_assets_tests.support.simulators import NO_RATE_LIMITS

# Long enough that four requests served one after another (4 s) are far from four served together
# (about 1 s), whatever else a loaded machine is doing.
LATENCY_S = 1.0
QUERY = "select * from Invoice startposition 1 maxresults 5"


def _timed_query(server: SimulatorServer, token: str) -> float:
    started = time.monotonic()
    qbo_query(server, token, QUERY).raise_for_status()
    return time.monotonic() - started


def test_each_data_request_waits_and_concurrent_requests_wait_together(world: World):
    with SimulatorServer(world, rate_limits=NO_RATE_LIMITS, page_latency_s=LATENCY_S) as server:
        token = qbo_token(server)  # the token endpoint is not a page: answered at once
        assert _timed_query(server, token) >= LATENCY_S
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: _timed_query(server, token), range(4)))
        assert time.monotonic() - started < 3 * LATENCY_S


def test_no_latency_by_default(server: SimulatorServer):
    assert server.page_latency_s == 0
    index = requests.get(server.url, timeout=5)
    assert index.status_code == 200


def test_latency_from_the_environment_and_the_cli(monkeypatch):
    monkeypatch.setenv(SIM_PAGE_LATENCY_VAR, "100")
    assert simulator_page_latency_s() == pytest.approx(0.1)
    monkeypatch.setenv(SIM_PAGE_LATENCY_VAR, "-5")
    with pytest.raises(SimSettingError, match="-5"):
        simulator_page_latency_s()
    assert build_parser().parse_args(["--page-latency-ms", "250"]).page_latency_ms == 250
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--page-latency-ms", "soon"])


def test_negative_latency_is_refused(world: World):
    with pytest.raises(ValueError, match="latency"):
        SimulatorServer(world, page_latency_s=-1)

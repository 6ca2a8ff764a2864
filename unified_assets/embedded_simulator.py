"""The platform's one door to the embedded simulator (the sibling package `saas_simulator`).

Everything the platform needs from the simulator goes through here: the server a source connection talks
to when no base URL is configured, the world the webhook companion watches, and the demo webhook keys.
The simulator reads its own UNIFIED_ASSETS_SIM_* variables and knows nothing of the platform; what it
needs from us (where to keep what it remembers, where history begins) is passed in, and its setting
errors come out as the platform's `SettingError`. No Dagster here.

Every process (each step, each sensor tick, the webhook companion) starts its own copy; they agree
because the simulated world is a function of (seed, time).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from saas_simulator import SimCredentials, SimulatorServer, World
from saas_simulator.environment import (
    SimSettingError,
    simulator_clock,
    simulator_faults,
    simulator_page_latency_s,
    simulator_world_config,
)
from saas_simulator.webhooks import WebhookEmitter
from unified_assets.settings import SettingError

_server: SimulatorServer | None = None
_server_lock = threading.Lock()


def simulated_world(history_start: date) -> World:
    """The world the UNIFIED_ASSETS_SIM_* variables describe, its history beginning at `history_start`."""
    try:
        return World(simulator_world_config(history_start), clock=simulator_clock())
    except SimSettingError as error:
        raise SettingError(str(error)) from None


def embedded_server(state_dir: Path, history_start: date) -> SimulatorServer:
    """The simulator this process serves on a loopback port, started on first use. `state_dir` is where
    it keeps what it must remember across processes (items written back to it)."""
    global _server
    with _server_lock:
        if _server is None:
            world = simulated_world(history_start)
            try:
                faults, latency_s = simulator_faults(), simulator_page_latency_s()
            except SimSettingError as error:
                raise SettingError(str(error)) from None
            _server = SimulatorServer(
                world,
                faults=faults,
                host="127.0.0.1",
                port=0,
                state_dir=state_dir,
                page_latency_s=latency_s,
            )
            _server.start()
        return _server


def webhook_sender(subscriptions: Mapping[str, str], history_start: date) -> WebhookEmitter:
    """The simulated vendors' webhooks for `subscriptions` (source -> URL), sending from now on."""
    return WebhookEmitter(simulated_world(history_start), dict(subscriptions)).start()


def demo_webhook_keys() -> dict[str, str]:
    """The keys the simulated vendors sign their webhooks with, by source."""
    demo = SimCredentials.demo()
    return {"support": demo.zendesk_webhook_secret, "accounting": demo.accounting_webhook_key}

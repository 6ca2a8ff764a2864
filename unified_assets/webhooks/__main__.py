"""`python -m unified_assets.webhooks`: the webhook receiver that runs beside `dagster dev`.

It verifies the vendors' deliveries and stores them in the inbox the business-event sensors read
(`<data>/inbox`, or the bucket's `inbox/` in the cluster profile). For every system served by the embedded
simulator it also runs the simulator's webhook sender, subscribed to this receiver, so the P1-ticket and
month-end-close webhooks arrive on a laptop as they would from the real vendors. `scripts/dev` starts it;
stop it with Ctrl-C.

Settings (environment): UNIFIED_ASSETS_WEBHOOK_HOST (127.0.0.1), UNIFIED_ASSETS_WEBHOOK_PORT (8901), the
signing keys UNIFIED_ASSETS_SUPPORT_WEBHOOK_SECRET and UNIFIED_ASSETS_ACCOUNTING_WEBHOOK_KEY (a system on
the simulator uses the simulator's public demo keys when its key is unset; a real system without its key
gets no route, and the sensors fall back to polling its API).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from unified_assets import settings
from unified_assets.lib.storage import PlatformStorage
from unified_assets.settings import SettingError
from unified_assets.webhooks.receiver import Verifier, WebhookReceiver
from unified_assets.webhooks.signatures import XeroVerifier, ZendeskVerifier

logger = logging.getLogger("unified_assets.webhooks")
SYSTEMS = {
    # source: (base-URL variable, signing-key variable, verifier)
    "support": (
        "UNIFIED_ASSETS_SUPPORT_BASE_URL",
        "UNIFIED_ASSETS_SUPPORT_WEBHOOK_SECRET",
        ZendeskVerifier,
    ),
    "accounting": (
        "UNIFIED_ASSETS_ACCOUNTING_BASE_URL",
        "UNIFIED_ASSETS_ACCOUNTING_WEBHOOK_KEY",
        XeroVerifier,
    ),
}


def on_simulator(source: str) -> bool:
    return not os.environ.get(SYSTEMS[source][0], "").strip()


def verifiers() -> list[Verifier]:
    from unified_assets.embedded_simulator import demo_webhook_keys

    demo_keys = demo_webhook_keys()
    found: list[Verifier] = []
    for source, (_, key_var, verifier) in SYSTEMS.items():
        key = os.environ.get(key_var, "").strip()
        if not key and on_simulator(source):
            key = demo_keys[source]
        if not key:
            logger.warning(f"{key_var} is not set: no {source} webhooks (the sensors poll its API)")
            continue
        found.append(verifier(key))
    return found


def start_simulator_events(receiver: WebhookReceiver):
    """The simulator's webhook sender for the systems it serves, subscribed to `receiver`."""
    from unified_assets.embedded_simulator import webhook_sender

    subscriptions = {
        source: f"{receiver.url}/webhooks/{source}"
        for source in SYSTEMS
        if on_simulator(source) and f"/webhooks/{source}" in receiver.routes
    }
    if not subscriptions:
        return None
    logger.info(f"simulator webhooks for {', '.join(subscriptions)} go to {receiver.url}")
    return webhook_sender(subscriptions, settings.history_start())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unified_assets.webhooks", description=__doc__)
    parser.add_argument(
        "--host", default=os.environ.get("UNIFIED_ASSETS_WEBHOOK_HOST", "127.0.0.1")
    )
    parser.add_argument(
        "--port", default=os.environ.get("UNIFIED_ASSETS_WEBHOOK_PORT", "8901"), type=_port
    )
    args = parser.parse_args(argv)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s webhooks %(levelname)s %(message)s")
    try:
        inbox = PlatformStorage.outside_dagster().inbox()
        receiver = WebhookReceiver(inbox, verifiers(), host=args.host, port=args.port)
    except (OSError, SettingError) as error:
        logger.error(f"cannot start the webhook receiver on {args.host}:{args.port}: {error}")
        return 1
    receiver.start()
    emitter = start_simulator_events(receiver)
    logger.info(f"receiving webhooks at {receiver.url}/webhooks/<source>; inbox {inbox.where}")
    stopped.wait()
    if emitter is not None:
        emitter.stop()
    receiver.stop()
    return 0


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {text!r}")
    return int(text)


if __name__ == "__main__":
    sys.exit(main())

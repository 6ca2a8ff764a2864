"""`python -m saas_simulator`: serve the three simulated vendors until Ctrl-C.

Prints the base URLs and the environment lines that point the platform's connectors at this process.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence

from saas_simulator.clock import SimClock
from saas_simulator.config import WorldConfig
from saas_simulator.environment import parse_latency_ms
from saas_simulator.faults import FaultPlan
from saas_simulator.ratelimit import parse_rate_limits
from saas_simulator.server import SimulatorServer
from saas_simulator.world import SYSTEMS, World


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m saas_simulator",
        description="Serve simulated QuickBooks Online, Coupa and Zendesk APIs over one world.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: loopback only)"
    )
    parser.add_argument(
        "--port", type=int, default=8900, help="port to listen on; 0 picks a free one"
    )
    parser.add_argument("--seed", type=int, default=7, help="the world's seed (default 7)")
    parser.add_argument(
        "--clock",
        type=SimClock.parse,
        default=SimClock.real(),
        help='"real" (default), "frozen:<ISO time>" or "accelerated:<speed>@<ISO anchor>"',
    )
    parser.add_argument(
        "--faults",
        type=FaultPlan.parse,
        default=FaultPlan(),
        help='e.g. "server_error=0.1,rate_limit=0.05"',
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies customers and daily volumes"
    )
    parser.add_argument(
        "--benchmark",
        action="store_true",
        help="the benchmark-sized world (millions of records) instead of the demo",
    )
    parser.add_argument(
        "--rate-limits",
        type=parse_rate_limits,
        default={},
        help='override vendor limits, e.g. "support=600/60,accounting=off"',
    )
    parser.add_argument(
        "--page-latency-ms",
        type=parse_latency_ms,
        default=0.0,
        help="wait this long before answering each data request, like a remote API (default 0)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    base = WorldConfig.benchmark if args.benchmark else WorldConfig.demo
    try:
        config = base(scale=args.scale, seed=args.seed)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    world = World(config, clock=args.clock)
    started = time.monotonic()
    world.extend_to(world.clock.timestamp())
    built = time.monotonic() - started
    server = SimulatorServer(
        world,
        faults=args.faults,
        host=args.host,
        port=args.port,
        rate_limits=args.rate_limits,
        page_latency_s=args.page_latency_ms / 1000.0,
    )
    try:
        server.start()
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    print(f"unified_assets simulator: {world} built in {built:.1f} s, serving on {server.url}")
    for system in SYSTEMS:
        print(f"  {system:<11} {server.base_urls[system]}")
    if args.faults:
        print(f"  faults: {args.faults}")
    print("\nPoint the platform at it (demo credentials):\n")
    for line in server.credentials.env_lines(server.base_urls):
        print(f"export {line}")
    print("\nCtrl-C to stop.", flush=True)
    stop = threading.Event()
    # Handlers of its own: a shell that starts it in the background without job control leaves SIGINT
    # ignored, and Ctrl-C (or a supervisor's SIGINT) would do nothing.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

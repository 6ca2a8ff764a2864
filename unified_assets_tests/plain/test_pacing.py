"""The request pacer the slices of one read share (`unified_assets/sources/pacing.py`)."""

from __future__ import annotations

import threading

import pytest

from unified_assets.sources.pacing import RequestPacer


class ManualClock:
    """A clock that moves only when the pacer sleeps, so the test sees every wait exactly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def time(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def most_in_any_window(sent: list[float], seconds: float) -> int:
    """The largest number of the `sent` times inside one half-open window of `seconds`."""
    ordered = sorted(sent)
    ends = [start + seconds - 1e-9 for start in ordered]  # float sums of the spacing
    return max(sum(1 for t in ordered[i:] if t < end) for i, end in enumerate(ends))


def test_requests_are_spaced_evenly_within_the_limit():
    clock = ManualClock()
    pacer = RequestPacer(5, 1.0, clock=clock.time, sleep=clock.sleep)
    sent = [pacer.wait_turn() for _ in range(12)]
    assert sent == pytest.approx([0.2 * n for n in range(12)])
    assert pacer.waited_s == pytest.approx(0.2 * 11)


def test_a_pacer_left_idle_sends_the_next_request_at_once():
    clock = ManualClock()
    pacer = RequestPacer(5, 1.0, clock=clock.time, sleep=clock.sleep)
    pacer.wait_turn()
    clock.sleep(3.0)
    assert pacer.wait_turn() == 3.0
    assert pacer.waited_s == 0.0


def test_threads_sharing_a_pacer_never_exceed_the_limit_together():
    pacer = RequestPacer(4, 0.2)
    sent: list[float] = []
    lock = threading.Lock()

    def slice_of_a_read() -> None:
        for _ in range(6):
            moment = pacer.wait_turn()
            with lock:
                sent.append(moment)

    threads = [threading.Thread(target=slice_of_a_read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent) == 24
    assert most_in_any_window(sent, 0.2) <= 4


@pytest.mark.parametrize(("requests", "seconds"), [(0, 1.0), (5, 0.0), (-1, 60.0)])
def test_a_limit_that_admits_nothing_is_refused(requests, seconds):
    with pytest.raises(ValueError, match="max_requests >= 1 and per_seconds > 0"):
        RequestPacer(requests, seconds)

"""runners/wake_bench.py: the call is timed, not what runs before it."""

import time

from runners.wake_bench import BEFORE, median_us


def test_median_us_times_the_call_not_what_runs_before_it():
    slept = median_us(lambda: None, lambda: time.sleep(0.003), calls=5)
    called = median_us(lambda: time.sleep(0.002), lambda: None, calls=5)
    assert slept < 1_000 <= 2_000 <= called


def test_the_first_case_is_back_to_back():
    assert next(iter(BEFORE)) == "back to back"

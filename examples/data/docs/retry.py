"""Retry helpers used by the billing service's HTTP clients."""

import random
import time


class RetryError(Exception):
    """Raised when every attempt failed."""

    def __init__(self, attempts, last_error):
        super().__init__(f"gave up after {attempts} attempts: {last_error}")
        self.attempts = attempts
        self.last_error = last_error


def backoff_delays(base=0.5, cap=30.0, attempts=5):
    """Exponential backoff with full jitter."""
    for attempt in range(attempts):
        yield random.uniform(0, min(cap, base * 2 ** attempt))


def retry(call, attempts=5, retry_on=(TimeoutError, ConnectionError)):
    """Calls `call` until it succeeds or `attempts` run out."""
    last = None
    for delay in backoff_delays(attempts=attempts):
        try:
            return call()
        except retry_on as err:
            last = err
            time.sleep(delay)
    raise RetryError(attempts, last)

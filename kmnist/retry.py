"""How long to insist on one mirror: what is retried, how often, how long to wait."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from .transfer import Transient


class GiveUp(Exception):
    """This mirror is done for this file (the reason goes into the error)."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of transient failures (``transfer.Transient``) on one mirror.

    ``attempts`` counts tries in a row that brought no new byte; a try that
    made progress (a connection cut mid-body) starts the count again, bounded
    by ``max_tries`` so that a server that cuts every body cannot hold us
    forever. Backoff doubles from ``backoff`` up to ``cap`` seconds; a
    ``Retry-After`` longer than ``max_retry_after`` sends us to the next mirror.
    """

    attempts: int = 4
    max_tries: int = 20
    backoff: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, fruitless: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next try, or None to give up on this mirror."""
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return float(min(self.cap, self.backoff * 2 ** max(fruitless - 1, 0)))


class Attempts:
    """The tries of one transfer (a whole file, or one byte range of it)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.tries = 0
        self.fruitless = 0

    def failed(self, exc: Transient, *, progressed: bool) -> None:
        """Wait before the next try, or raise GiveUp."""
        self.tries += 1
        self.fruitless = 0 if progressed else self.fruitless + 1
        wait = self.policy.delay(max(self.fruitless, 1), exc.retry_after)
        if (
            wait is None
            or self.fruitless >= self.policy.attempts
            or self.tries >= self.policy.max_tries
        ):
            raise GiveUp(f"{exc} (after {self.tries} tries)", unreachable=exc.unreachable)
        self.policy.sleep(wait)

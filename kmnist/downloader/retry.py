"""How long to insist on one mirror: what is retried, how often, how long to wait."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from .transfer import Transient

# Waits shorter than this pass without a word; longer ones are announced, so
# that a back-off never looks like a hang.
NOTICE_WAIT = 1.0


class GiveUp(Exception):
    """This mirror is done for this file (the reason goes into the error)."""

    def __init__(
        self,
        reason: str,
        *,
        unreachable: bool = False,
        stalled: bool = False,
    ) -> None:
        super().__init__(reason)
        self.unreachable = unreachable
        self.stalled = stalled


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
    # A connection that cannot be made at all is tried once more, not
    # ``attempts`` times: a host that is down or filtered costs a connect
    # timeout per try, and the next mirror is usually the quicker cure.
    unreachable_attempts: int = 2
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

    def __init__(self, policy: RetryPolicy, say: Callable[[str], None] | None = None) -> None:
        self.policy = policy
        self.say = say  # told of each wait worth a word (a second or more)
        self.tries = 0
        self.fruitless = 0
        self.unreachable = 0  # tries in a row that could not connect

    def failed(self, exc: Transient, *, progressed: bool) -> None:
        """Wait before the next try, or raise GiveUp."""
        self.tries += 1
        self.fruitless = 0 if progressed else self.fruitless + 1
        self.unreachable = self.unreachable + 1 if exc.unreachable else 0
        # A connection that was delivering and got cut is reconnected at once;
        # backoff is for a server that does not deliver.
        if progressed and exc.retry_after is None:
            wait: float | None = 0.0
        else:
            wait = self.policy.delay(max(self.fruitless, 1), exc.retry_after)
        if (
            wait is None
            or self.fruitless >= self.policy.attempts
            or self.unreachable >= self.policy.unreachable_attempts
            or self.tries >= self.policy.max_tries
        ):
            raise GiveUp(
                f"{exc} (after {self.tries} {'try' if self.tries == 1 else 'tries'})",
                unreachable=exc.unreachable,
                stalled=exc.stalled,
            )
        if wait:
            if self.say is not None and wait >= NOTICE_WAIT:
                self.say(f"{exc}; trying again in {wait:.0f} s (try {self.tries + 1})")
            self.policy.sleep(wait)

"""The one HTTP retry loop (`pmws.retry`): Gamma and REST `/books` both go through it."""

from __future__ import annotations

import asyncio

from pmws.retry import Attempt, with_retries


def attempts(*outcomes: Attempt[str], max_attempts: int = 3) -> tuple[Attempt[str], list[int]]:
    calls: list[int] = []

    async def once(number: int) -> Attempt[str]:
        calls.append(number)
        return outcomes[number - 1]

    last = asyncio.run(with_retries(once, max_attempts=max_attempts, backoff_max=1.0, hint_max=5.0))
    return last, calls


def test_retryable_failures_are_retried_until_one_is_done(slept: list[float]) -> None:
    hinted = Attempt[str](retryable=True, retry_after=60)
    last, calls = attempts(Attempt(retryable=True), hinted, Attempt(True, "x"))
    assert (last.done, last.value, calls) == (True, "x", [1, 2, 3])
    assert 0.25 <= slept[0] <= 0.5 and slept[1] == 5.0  # backoff, then the server's hint bounded by hint_max


def test_a_failure_for_good_is_not_retried_and_max_attempts_is_the_last(slept: list[float]) -> None:
    assert attempts(Attempt(retryable=False), Attempt(True, "x"))[1] == [1] and slept == []
    last, calls = attempts(*[Attempt[str](retryable=True)] * 3, max_attempts=2)
    assert (last.done, calls) == (False, [1, 2])

"""What the first-sync batching benchmarks share: switching a provider's batching off for one
run, and running the same first sync twice (batched, then one request per event) to compare."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def batching(provider_cls: type, on: bool) -> Iterator[None]:
    """The provider class batches as it does (`on`), or sends one request per event."""
    saved = provider_cls.batch_size
    provider_cls.batch_size = saved if on else 1
    try:
        yield
    finally:
        provider_cls.batch_size = saved


def compare(run_once: Callable[..., dict], events: int) -> tuple[dict, dict, float, float]:
    """(batched run, unbatched run, HTTP requests cut, write requests cut): each run's dict
    has at least "http" (requests that crossed the network) and "writes" (those carrying writes)."""
    batched = run_once(events, batched=True)
    single = run_once(events, batched=False)
    return batched, single, single["http"] / batched["http"], single["writes"] / batched["writes"]

"""Metrics: one object per name however often it is looked up, and hot-path increments count like the others."""

from __future__ import annotations

import pytest

from shared.metrics import Counter, Registry


def test_lookups_return_the_registered_metric() -> None:
    """Looking a counter or histogram up again gives the same object, so nothing counted is lost."""
    r = Registry()
    assert r.counter("c_total", "c") is r.counter("c_total", "c")
    assert r.histogram("h_seconds", "h") is r.histogram("h_seconds", "h")


def test_prepared_labels_count_with_keyword_labels() -> None:
    """``inc_key`` with ``Counter.key`` lands on the same series as ``inc`` with the same labels, in any order."""
    c = Registry().counter("clicks_total", "clicks")
    c.inc(action="ClickAllowed", clicked_through="false")
    c.inc_key(Counter.key(clicked_through="false", action="ClickAllowed"), 2)
    assert c.get(action="ClickAllowed", clicked_through="false") == 3
    assert 'clicks_total{action="ClickAllowed",clicked_through="false"} 3' in "\n".join(c.render())


@pytest.mark.parametrize(
    ("value", "shown"),
    [(1_234_567, "1234567"), (10**15, "1000000000000000"), (3, "3"), (0, "0"), (0.25, "0.25"),
     (1234567.5, "1234567.5"), (float("inf"), "+Inf")],
)
def test_samples_render_in_full(value: float, shown: str) -> None:
    """Counters, gauges and histogram sums print whole numbers as integers and other values in full."""
    r = Registry()
    r.counter("c_total", "c").inc(value)
    r.gauge("g", "g", lambda: [((), value)])
    h = r.histogram("h_seconds", "h")
    h.observe(value)
    lines = r.render().splitlines()
    assert f"c_total {shown}" in lines
    assert f"g {shown}" in lines
    assert f"h_seconds_sum {shown}" in lines

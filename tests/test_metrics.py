"""Metrics: one object per name however often it is looked up, and hot-path increments count like the others."""

from __future__ import annotations

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

"""Prometheus text-format metrics, held per application instead of in a global registry."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]


def _fmt_labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def sample(value: float) -> str:
    """A sample value as Prometheus reads it: whole numbers in full (``1234567``, never ``1.23457e+06``)."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass
class Counter:
    name: str
    help: str
    values: dict[Labels, float] = field(default_factory=dict)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.values[key] = self.values.get(key, 0.0) + amount

    @staticmethod
    def key(**labels: str) -> Labels:
        """Labels in the form ``inc_key`` takes: made once, used on every increment."""
        return tuple(sorted(labels.items()))

    def inc_key(self, key: Labels, amount: float = 1.0) -> None:
        """``inc`` for a hot path, with the labels already made by ``key``."""
        self.values[key] = self.values.get(key, 0.0) + amount

    def get(self, **labels: str) -> float:
        return self.values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_fmt_labels(labels)} {sample(value)}"


@dataclass
class Gauge:
    """A value read when scraped (``kind="counter"`` for a total kept elsewhere as a plain int)."""

    name: str
    help: str
    read: Callable[[], Iterable[tuple[Labels, float]]]
    kind: str = "gauge"

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for labels, value in self.read():
            yield f"{self.name}{_fmt_labels(labels)} {sample(value)}"


@dataclass
class Histogram:
    name: str
    help: str
    buckets: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.total += value
        self.n += 1

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        running = 0
        for bound, count in zip((*self.buckets, math.inf), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == math.inf else f"{bound:g}"
            yield f'{self.name}_bucket{{le="{le}"}} {running}'
        yield f"{self.name}_sum {sample(self.total)}"
        yield f"{self.name}_count {self.n}"


class Registry:
    """The metrics of one running application."""

    def __init__(self) -> None:
        self._items: dict[str, Counter | Gauge | Histogram] = {}

    # Looked up on hot paths (every click counts itself): build the metric only when it is new.
    def counter(self, name: str, help: str) -> Counter:
        item = self._items.get(name)
        if item is None:
            item = self._items[name] = Counter(name, help)
        assert isinstance(item, Counter)
        return item

    def histogram(self, name: str, help: str) -> Histogram:
        item = self._items.get(name)
        if item is None:
            item = self._items[name] = Histogram(name, help)
        assert isinstance(item, Histogram)
        return item

    def gauge(self, name: str, help: str, read: Callable[[], Iterable[tuple[Labels, float]]],
              *, kind: str = "gauge") -> Gauge:
        gauge = Gauge(name, help, read, kind)
        self._items[name] = gauge
        return gauge

    def register(self, item: Counter | Gauge | Histogram) -> None:
        """Add a metric made elsewhere (for example one owned by a route)."""
        self._items[item.name] = item

    def render(self) -> str:
        lines: list[str] = []
        for item in self._items.values():
            lines.extend(item.render())
        return "\n".join(lines) + "\n"

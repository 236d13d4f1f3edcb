"""Expression index: Safe Browsing matching semantics, payloads, diffs, build errors."""

from __future__ import annotations

import pytest

from shared.feeds import FeedEntry
from shared.verdicts.index import (
    ExpressionIndex,
    IndexBuildError,
    IndexDiff,
    expression_pairs,
)

MALWARE, PHISHING = 1, 2

INDEX = ExpressionIndex.build(
    [
        ("evil.example/", MALWARE),  # whole host, subdomains, every path
        ("files.test/drop/", MALWARE),  # a path and below
        ("bank.invalid/login?next=1", PHISHING),  # exactly this URL
    ]
)


@pytest.mark.parametrize(
    ("expressions", "expected"),
    [
        # a.evil.example/x/y.html: host suffixes x path prefixes
        (["a.evil.example/x/y.html", "a.evil.example/", "evil.example/x/y.html", "evil.example/"],
         MALWARE),
        (["files.test/drop/a/b.exe", "files.test/drop/a/", "files.test/drop/", "files.test/"],
         MALWARE),
        (["files.test/other/b.exe", "files.test/other/", "files.test/"], None),
        (["bank.invalid/login?next=1", "bank.invalid/login", "bank.invalid/"], PHISHING),
        (["bank.invalid/login?next=2", "bank.invalid/login", "bank.invalid/"], None),
        (["good.example/", "good.example/evil.example/"], None),
        ([], None),
    ],
)
def test_lookup_follows_expression_semantics(expressions: list[str], expected: int | None) -> None:
    """A URL matches when one of its expressions is listed; otherwise None."""
    assert INDEX.lookup(expressions) == expected


def test_first_listed_expression_wins() -> None:
    """With several listed expressions, the payload of the first in query order is returned."""
    index = ExpressionIndex.build([("a.example/x/", PHISHING), ("a.example/", MALWARE)])
    assert index.lookup(["a.example/x/", "a.example/"]) == PHISHING
    assert index.lookup(["a.example/", "a.example/x/"]) == MALWARE
    assert index.match(["b.example/", "a.example/x/", "a.example/"]) == ("a.example/x/", PHISHING)


def test_duplicate_expression_keeps_first_payload() -> None:
    """A repeated expression is indexed once, with the payload it was first given."""
    index = ExpressionIndex.build([("a.example/", PHISHING), ("a.example/", MALWARE)])
    assert len(index) == 1
    assert index.lookup(["a.example/"]) == PHISHING


def test_contains_items_and_size() -> None:
    """Membership, iteration and length agree with the input."""
    assert "evil.example/" in INDEX
    assert "evil.example" not in INDEX
    assert 42 not in INDEX
    assert sorted(INDEX.items()) == [
        ("bank.invalid/login?next=1", PHISHING),
        ("evil.example/", MALWARE),
        ("files.test/drop/", MALWARE),
    ]
    assert len(INDEX) == 3
    assert INDEX.nbytes() > 0


def test_non_ascii_expressions_round_trip() -> None:
    """Expressions that are not ASCII are stored and given back intact."""
    index = ExpressionIndex.build([("bücher.example/", MALWARE), ("a.example/", PHISHING)])
    assert index.lookup(["bücher.example/"]) == MALWARE
    assert dict(index.items()) == {"bücher.example/": MALWARE, "a.example/": PHISHING}


def test_empty_index_finds_nothing() -> None:
    """An empty build is valid and matches nothing."""
    for index in (ExpressionIndex.build([]), ExpressionIndex.empty()):
        assert len(index) == 0
        assert index.lookup(["a.example/"]) is None


def test_index_is_read_only() -> None:
    """The arrays behind an index cannot be written in place."""
    with pytest.raises(ValueError):
        INDEX._hashes[0] = 0


def test_many_entries_all_found() -> None:
    """Every one of 20,000 entries is found and unlisted neighbours are not."""
    pairs = [(f"h{i}.example/p{i % 7}/", i % 5) for i in range(20_000)]
    index = ExpressionIndex.build(pairs)
    assert all(index.lookup([e]) == p for e, p in pairs)
    assert not any(index.lookup([f"h{i}.example/q/"]) is not None for i in range(2_000))


@pytest.mark.parametrize(
    "pairs",
    [
        [("a.example/", -1)],
        [("a.example/", 70_000)],
        [("a.example/", "1")],
        [(b"a.example/", 1)],
        [(7, 1)],
        [("", 1)],
    ],
)
def test_bad_input_raises_build_error(pairs: list[tuple[object, object]]) -> None:
    """Non-string or empty expressions and out-of-range payloads raise IndexBuildError."""
    with pytest.raises(IndexBuildError):
        ExpressionIndex.build(pairs)  # type: ignore[arg-type]


def test_diff_names_added_removed_and_changed() -> None:
    """A rebuild's diff lists new, dropped and re-typed expressions by name."""
    old = ExpressionIndex.build(
        [("keep.example/", MALWARE), ("gone.example/", MALWARE), ("moved.example/", MALWARE)]
    )
    new = ExpressionIndex.build(
        [("keep.example/", MALWARE), ("moved.example/", PHISHING), ("new.example/a/", PHISHING)]
    )
    diff = ExpressionIndex.diff(old, new)
    assert diff == IndexDiff(
        added=[("new.example/a/", PHISHING)],
        removed=[("gone.example/", MALWARE)],
        changed=[("moved.example/", MALWARE, PHISHING)],
    )
    assert ExpressionIndex.diff(new, new) == IndexDiff([], [], [])
    assert not ExpressionIndex.diff(new, new)


def test_diff_against_empty() -> None:
    """From or to an empty index, everything is added or removed."""
    empty = ExpressionIndex.empty()
    assert ExpressionIndex.diff(empty, INDEX).added == list(INDEX.items())
    assert len(ExpressionIndex.diff(INDEX, empty).removed) == 3


def test_diff_at_scale() -> None:
    """Replacing 1 % of 50,000 entries yields exactly those 500 added and 500 removed."""
    base = [f"h{i}.example/" for i in range(50_000)]
    old = ExpressionIndex.build((e, 1) for e in base)
    new = ExpressionIndex.build((e if i % 100 else f"n{i}.test/", 1) for i, e in enumerate(base))
    diff = ExpressionIndex.diff(old, new)
    assert sorted(e for e, _ in diff.added) == sorted(f"n{i}.test/" for i in range(0, 50_000, 100))
    assert sorted(e for e, _ in diff.removed) == sorted(base[i] for i in range(0, 50_000, 100))


def _fake_expression_of(value: str) -> str:
    """Test stand-in for shared.urls.expression_of: strips a scheme, adds '/' to bare hosts."""
    if " " in value:
        raise ValueError("space in URL")
    rest = value.split("://", 1)[-1]
    return rest if "/" in rest else rest + "/"


def test_expression_pairs_applies_seam_and_counts_rejects() -> None:
    """Entries go through to_expression; refused ones are counted, threats mapped to codes."""
    entries = [
        FeedEntry("evil.example", "malware"),
        FeedEntry("http://a.test/x/", "phishing"),
        FeedEntry("http://bad url/", "phishing"),
        FeedEntry("c.invalid", "spam"),
    ]
    result = expression_pairs(
        entries, {"malware": MALWARE, "phishing": PHISHING}, _fake_expression_of, fallback_code=9
    )
    assert result.pairs == [("evil.example/", MALWARE), ("a.test/x/", PHISHING), ("c.invalid/", 9)]
    assert result.rejected == 1
    assert "space in URL" in result.rejected_examples[0]


def test_expression_pairs_unknown_threat_without_fallback() -> None:
    """A threat with no code and no fallback is an IndexBuildError."""
    with pytest.raises(IndexBuildError, match="spam"):
        expression_pairs([FeedEntry("a.example", "spam")], {}, _fake_expression_of)

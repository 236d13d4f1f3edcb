"""The last good copy of each feed on disk, replaced atomically.

`NAME.data` holds the body exactly as fetched and `NAME.meta.json` its validators and
counts. Each is written to a temporary file in the same directory, fsynced, then renamed
over the old one, so a crash leaves either the old file or the new one, never half of one.
`store` is only called once the body parsed, so the copy on disk is always usable: at start,
or when a download is broken, the verdict engine rebuilds from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from shared.feeds.errors import FeedCacheError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class CacheMeta:
    """What is known about a stored copy: validators for the next fetch, counts, checksum."""

    etag: str | None
    last_modified: str | None
    fetched_at: datetime
    entries: int
    bad_lines: int
    sha256: str


@dataclass(frozen=True)
class CachedFeed:
    data: bytes
    meta: CacheMeta


class FeedCache:
    """A directory of feed copies, one pair of files per feed name."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _paths(self, name: str) -> tuple[Path, Path]:
        if not _NAME_RE.match(name) or ".." in name:
            raise FeedCacheError(f"unsafe feed name {name!r}: use letters, digits, '.', '_', '-'")
        return self.directory / f"{name}.data", self.directory / f"{name}.meta.json"

    def store(
        self,
        name: str,
        data: bytes,
        *,
        etag: str | None,
        last_modified: str | None,
        entries: int,
        bad_lines: int,
        fetched_at: datetime | None = None,
    ) -> CacheMeta:
        """Replace the copy of `name` with `data` (already parsed) and its metadata."""
        data_path, meta_path = self._paths(name)
        meta = CacheMeta(
            etag=etag,
            last_modified=last_modified,
            fetched_at=fetched_at or datetime.now(UTC),
            entries=entries,
            bad_lines=bad_lines,
            sha256=hashlib.sha256(data).hexdigest(),
        )
        record = asdict(meta) | {"fetched_at": meta.fetched_at.isoformat()}
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Data first: a crash between the two renames leaves new data with old metadata,
            # which `load` detects by checksum and answers with validators dropped.
            _atomic_write(data_path, data)
            _atomic_write(meta_path, json.dumps(record, indent=2).encode())
        except OSError as exc:
            raise FeedCacheError(f"cannot store feed {name!r} in {self.directory}: {exc}") from exc
        return meta

    def load(self, name: str) -> CachedFeed | None:
        """The stored copy of `name`, or None when there is none."""
        data_path, meta_path = self._paths(name)
        try:
            data = data_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FeedCacheError(f"cannot read cached feed {name!r}: {exc}") from exc
        digest = hashlib.sha256(data).hexdigest()
        meta = self._read_meta(meta_path)
        if meta is None or meta.sha256 != digest:
            # The body is a good parsed copy but its validators belong to another body:
            # keep the body, forget the validators so the next fetch is unconditional.
            meta = CacheMeta(None, None, _mtime(data_path), -1, -1, digest)
        return CachedFeed(data, meta)

    def meta(self, name: str) -> CacheMeta | None:
        """Only the metadata (for revalidation) without reading the body."""
        return self._read_meta(self._paths(name)[1])

    @staticmethod
    def _read_meta(path: Path) -> CacheMeta | None:
        try:
            record = json.loads(path.read_bytes())
            return CacheMeta(
                etag=record["etag"],
                last_modified=record["last_modified"],
                fetched_at=datetime.fromisoformat(record["fetched_at"]),
                entries=int(record["entries"]),
                bad_lines=int(record["bad_lines"]),
                sha256=str(record["sha256"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            # A damaged metadata file must not stop a start-up from using the body.
            return None

    def touch(self, name: str, *, fetched_at: datetime | None = None) -> CacheMeta | None:
        """Record that a revalidation (304) found the stored copy current."""
        meta = self.meta(name)
        if meta is None:
            return None
        meta = replace(meta, fetched_at=fetched_at or datetime.now(UTC))
        record = asdict(meta) | {"fetched_at": meta.fetched_at.isoformat()}
        try:
            _atomic_write(self._paths(name)[1], json.dumps(record, indent=2).encode())
        except OSError as exc:
            raise FeedCacheError(f"cannot update metadata of feed {name!r}: {exc}") from exc
        return meta


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # The rename itself is durable only once the directory entry is on disk.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

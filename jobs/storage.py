"""Storage calls told apart: storage that is away, which the pipeline waits out, from a file that
is missing, which is that file's job's loss.

An outage (the disk gone or unwritable, the object store unreachable or refusing) raises
``StorageUnavailable``: the loops back off and try again, as for a database outage, and no job
is failed and no tile dropped. A file missing while storage answers raises FileNotFoundError, as
before. Pixels are read whole here and decoded by the caller, so a decoder's OSError (a garbled
image) is never taken for an outage.
"""

from __future__ import annotations

import bisect
import errno
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from itertools import accumulate
from pathlib import Path
from typing import BinaryIO

from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, default_storage

logger = logging.getLogger(__name__)
PROCESS_FILES = Path("/proc/self/fd")  # Linux's: a file open in this process, by descriptor


class StorageUnavailable(Exception):
    """Storage did not answer: try again later; nothing is failed or dropped meanwhile."""


@contextmanager
def calls(what: str) -> Iterator[None]:
    """Storage errors inside the block as ``StorageUnavailable``, but a missing file (while storage
    answers) as FileNotFoundError."""
    try:
        yield
    except StorageUnavailable:
        raise
    except FileNotFoundError as exc:
        # Every file is "missing" while the root is: that is storage away, not a lost file.
        if not reachable():
            raise StorageUnavailable(f"{what}: {exc}") from exc
        raise
    except (OSError, BotoCoreError, ClientError) as exc:
        raise StorageUnavailable(f"{what}: {exc}") from exc


def probe() -> None:
    """Ask storage for its top level; raises what storage raises (FileNotFoundError: a local
    root not made yet, which the first save makes)."""
    default_storage.listdir("")


def reachable() -> bool:
    try:
        probe()
    except (OSError, BotoCoreError, ClientError):
        return False
    return True


def read(name: str) -> bytes:
    with calls(f"reading {name}"), default_storage.open(name, "rb") as handle:
        return handle.read()


class Stream:
    """A stored file read a piece at a time (an original decoded in bands): storage's errors on
    the way are ``StorageUnavailable``, as ``read``'s are."""

    def __init__(self, name: str) -> None:
        self.name = name
        with calls(f"opening {name}"):
            self.handle = default_storage.open(name, "rb")

    def read(self, size: int = -1) -> bytes:
        with calls(f"reading {self.name}"):
            return self.handle.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        with calls(f"reading {self.name}"):
            return self.handle.seek(offset, whence)

    def tell(self) -> int:
        return self.handle.tell()

    @property
    def closed(self) -> bool:
        return self.handle.closed

    def seekable(self) -> bool:
        return True

    @property
    def size(self) -> int:
        with calls(f"reading the size of {self.name}"):
            return default_storage.size(self.name)

    def close(self) -> None:
        self.handle.close()


class Joined:
    """Stored files read as one, in order (a resumable upload's pieces): ``lengths`` are theirs.
    Each is opened when a read reaches it, so one piece at most is open at a time."""

    def __init__(self, names: list[str], lengths: list[int], name: str = "") -> None:
        self.names, self.lengths, self.name = names, lengths, name
        self.starts = list(accumulate(lengths, initial=0))[:-1]
        self.size = sum(lengths)
        self.position = 0
        self.current: tuple[int, Stream] | None = None

    def read(self, size: int = -1) -> bytes:
        wanted = self.size - self.position if size < 0 else min(size, self.size - self.position)
        parts = []
        while wanted > 0:
            index = bisect.bisect_right(self.starts, self.position) - 1
            piece = self._open(index)
            piece.seek(self.position - self.starts[index])
            data = piece.read(min(wanted, self.starts[index] + self.lengths[index] - self.position))
            if not data:
                raise StorageUnavailable(f"reading {self.names[index]}: it is shorter than it was stored")
            parts.append(data)
            self.position += len(data)
            wanted -= len(data)
        return b"".join(parts)

    def _open(self, index: int) -> Stream:
        if self.current is None or self.current[0] != index:
            self.close()
            self.current = (index, Stream(self.names[index]))
        return self.current[1]

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.position, 2: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    closed = False  # each piece is opened as it is read

    def close(self) -> None:
        if self.current is not None:
            self.current[1].close()
            self.current = None


def save(name: str, data: bytes) -> str:
    """Store ``data`` under ``name``, replacing what an earlier, uncounted attempt left; the name."""
    return _replace(name, ContentFile(data))


def save_file(name: str, handle: BinaryIO) -> str:
    """Store the file open in ``handle`` (a result written to disk a band at a time) under
    ``name``, copied in chunks, as ``save`` stores bytes; the name. A file on the same filesystem
    as a local storage is linked into it instead, whole, with no copy (``linked``)."""
    handle.flush()
    if linked(name, handle):
        return name
    handle.seek(0)
    return _replace(name, File(handle))


def spool(directory: str | Path | None = None) -> BinaryIO:
    """A file with no name in ``directory`` (the system's temporary one if None), gone with its
    process whatever happens to it, which ``save_file`` can still link into a local storage.
    (Python's ``TemporaryFile`` opens one that can never be linked; this one can.)"""
    try:
        fd = os.open(directory or tempfile.gettempdir(), os.O_TMPFILE | os.O_RDWR, 0o644)
    except (AttributeError, OSError):  # no O_TMPFILE here, or not on this filesystem
        return tempfile.TemporaryFile(dir=directory)
    return os.fdopen(fd, "w+b")


def linked(name: str, handle: BinaryIO) -> bool:
    """Give the file open in ``handle`` the name ``name`` in a local storage, replacing what an
    earlier attempt left there, by a link: no byte copied. False, and nothing done, if storage is
    not local or the file can't be linked there (another filesystem, or a file made not to be)."""
    if not isinstance(default_storage, FileSystemStorage) or not PROCESS_FILES.is_dir():
        return False
    with calls(f"writing {name}"):
        target = Path(default_storage.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        beside = f".{target.name}.{uuid.uuid4().hex}"
        folder = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            try:  # a folder's descriptor makes this linkat(2), which follows /proc's link to the file
                os.link(PROCESS_FILES / str(handle.fileno()), beside, dst_dir_fd=folder, follow_symlinks=True)
            except OSError as exc:
                if exc.errno in (errno.EXDEV, errno.ENOENT, errno.EPERM, errno.EMLINK):
                    return False  # another filesystem; a temporary file opened not to be linked
                raise
            try:
                os.chmod(beside, default_storage.file_permissions_mode or 0o644, dir_fd=folder)
                os.replace(beside, target.name, src_dir_fd=folder, dst_dir_fd=folder)
            except BaseException:
                with suppress(OSError):
                    os.unlink(beside, dir_fd=folder)  # no half-named file left in storage
                raise
        finally:
            os.close(folder)
    return True


def _replace(name: str, content: File) -> str:
    with calls(f"writing {name}"):
        default_storage.delete(name)
        return default_storage.save(name, content)


def discard(names: list[str]) -> None:
    """Delete files nobody needs any more, as far as storage lets: one that stays behind is logged,
    and ``manage.py sweep_storage`` deletes it later (no row names it)."""
    for name in names:
        try:
            with calls(f"deleting {name}"):
                default_storage.delete(name)
        except (StorageUnavailable, FileNotFoundError) as exc:
            logger.warning("could not delete %s: %s", name, exc)

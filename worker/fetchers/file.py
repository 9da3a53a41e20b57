"""The file fetcher: ``file:///abs/path``, readable only under the roots of SLUICE_FILE_ROOTS.

Everything outside the roots gets one refusal, whether it exists or not and wherever a
symlink points: the answers must not tell what is on the machine beyond the roots. Inside
them, a missing file is "no such file".
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from worker.errors import FetchError
from worker.registry import fetcher
from worker.settings import WorkerConfig

LIMITED = "file access is limited to SLUICE_FILE_ROOTS"
# O_NONBLOCK: opening a FIFO must not hang the thread; O_NOFOLLOW: open the path that was checked
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def path_of(uri: str) -> Path:
    """The absolute local path a ``file:`` URI names, or FetchError."""
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise FetchError(f"file URI {uri!r} names host {parts.netloc!r}; only local paths work")
    # %XX escapes are bytes of the name, as the file system has them (not always UTF-8)
    path = os.fsdecode(unquote_to_bytes(parts.path))
    if not path.startswith("/"):
        raise FetchError(f"file URI {uri!r} needs an absolute path (file:///abs/path)")
    return Path(path)


class FileFetcher:
    """Reads local files in a thread, refusing anything outside the configured roots."""

    def __init__(self, config: WorkerConfig) -> None:
        self.roots = config.file_root_paths

    async def fetch(self, uri: str, max_bytes: int) -> bytes:
        path = path_of(uri)
        if not self.roots:
            raise FetchError(f"refused: {path}: {LIMITED}, which is empty")
        return await asyncio.to_thread(self._read, path, max_bytes)

    def _read(self, path: Path, max_bytes: int) -> bytes:
        real = self._locate(path)
        try:
            fd = os.open(real, _OPEN_FLAGS)
        except OSError as exc:
            raise FetchError(f"cannot read {path}: {_reason(exc)}") from None
        try:
            opened = opened_path(fd)
            if opened is not None and not self._inside(opened):
                # a directory on the way was swapped for a symlink after the check above
                raise _refused(path)
            return _read_fd(fd, path, max_bytes)
        except OSError as exc:
            raise FetchError(f"cannot read {path}: {_reason(exc)}") from None
        finally:
            os.close(fd)

    def _locate(self, path: Path) -> Path:
        """The real path of an input under a root, or FetchError. Where the path leads is
        judged before whether it exists: symlinks are followed as far as they exist, so a
        missing file behind a symlink out of the roots is refused, not "not found"."""
        try:
            leads_to = path.resolve(strict=False)
        except ValueError as exc:  # a NUL byte: no file has such a name
            raise FetchError(f"cannot read {path}: {exc}") from None
        except (OSError, RuntimeError):  # a symlink loop
            raise _refused(path) from None
        if not self._inside(leads_to):
            raise _refused(path)
        try:
            real = path.resolve(strict=True)
        except FileNotFoundError:
            raise FetchError(f"no such file: {path}") from None
        except (OSError, RuntimeError, ValueError) as exc:
            raise FetchError(f"cannot read {path}: {_reason(exc)}") from None
        if not self._inside(real):  # a symlink changed since the first look
            raise _refused(path)
        return real

    def _inside(self, real: Path) -> bool:
        return any(real.is_relative_to(root) for root in self.roots)

    async def close(self) -> None:
        return None


def opened_path(fd: int) -> Path | None:
    """Where an open file really is, as the kernel tells it (None where it cannot: not Linux).

    O_NOFOLLOW guards only the last component of a path; this catches a parent directory
    replaced by a symlink between the roots check and the open.
    """
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def _read_fd(fd: int, path: Path, max_bytes: int) -> bytes:
    """Read an open file, refusing anything but a regular file of at most ``max_bytes``."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise FetchError(f"cannot read {path}: not a regular file")
    if info.st_size > max_bytes:
        raise FetchError(
            f"file {path} is {info.st_size} bytes, over the limit of {max_bytes} bytes"
        )
    with open(fd, "rb", closefd=False) as handle:
        data = handle.read(max_bytes + 1)  # one more byte tells a file that grew
    if len(data) > max_bytes:
        raise FetchError(f"file {path} is over the limit of {max_bytes} bytes")
    return data


def _refused(path: Path) -> FetchError:
    """The one refusal for every path outside the roots: it names the path asked for, never
    where it leads, and says the same whether anything is there or not."""
    return FetchError(f"refused: {path} is outside every root; {LIMITED}")


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


@fetcher("file")
def file_fetcher(config: WorkerConfig) -> FileFetcher:
    """The file fetcher, limited to SLUICE_FILE_ROOTS."""
    return FileFetcher(config)

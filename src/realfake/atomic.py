"""Write-then-rename: an output file is either complete or absent.

A crash, a full disk or Ctrl-C never leaves a half-written file under the final
name, so a later run (or Snakemake) never trusts a partial output.

Temporary names. A temporary file or directory sits next to its target as
``.<name>.tmp-<host>-<pid>`` (with the target's suffix again where a library
insists on one, e.g. ``.keras``). A process killed with SIGKILL cannot remove
its own; the next writer of the same target removes those of this host whose
process is no longer running (:func:`remove_stale_temporaries`). The host is
part of the name because on a cluster's shared file system another node's
process id says nothing here: a temporary of another host is left alone, since
its writer may still be running. (Names written by older versions,
``.<name>.tmp-<pid>``, count as this host's.)

Refused writes. A full disk, a read-only file system or a directory without
write permission, whether met creating the output's directory
(:func:`output_directory`) or writing the file (:func:`atomic_output`) or a
directory (:func:`atomic_directory`), is one line naming the output
(:func:`write_failure`), with nothing left under its name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from realfake.errors import RealfakeError

# errno values that mean "the file system cannot take more": full disk, quota, file too large.
OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# errno values that mean "no writing here": a read-only file system, no write permission (EPERM: e.g. an
# immutable file, or a file system that refuses the operation to everyone).
WRITE_REFUSED = (errno.EROFS, errno.EACCES, errno.EPERM)


class WriteFailure(RealfakeError):
    """A write the file system refused (:data:`OUT_OF_SPACE`, :data:`WRITE_REFUSED`), stated in one line.

    ``error`` is the OSError, kept so that a writer staging into a temporary directory can name its
    own output instead of the temporary (:func:`atomic_directory`).
    """

    def __init__(self, message: str, error: OSError):
        super().__init__(message)
        self.error = error


def _host() -> str:
    """This machine's name in temporary names (characters other than letters, digits, '.' and '_' become '_')."""
    return re.sub(r"[^A-Za-z0-9._]", "_", socket.gethostname()) or "localhost"


def temporary_path(path: Path, kind: str = "tmp", suffix: str = "") -> Path:
    """``.<name>.<kind>-<host>-<pid><suffix>`` next to ``path``: this process's temporary for it."""
    path = Path(path)
    return path.with_name(f".{path.name}.{kind}-{_host()}-{os.getpid()}{suffix}")


def _process_is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_temporaries(path: Path, kind: str = "tmp", suffix: str = "") -> list[Path]:
    """Remove the temporaries of ``path`` (see :func:`temporary_path`) left by dead processes of this host.

    Returns what was removed (files and directories alike). Temporaries of
    running processes and of other hosts are kept.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(
        rf"\.{re.escape(path.name)}\.{re.escape(kind)}-(?:(?P<host>.+)-)?(?P<pid>\d+){re.escape(suffix)}"
    )
    host = _host()
    removed = []
    with os.scandir(path.parent) as entries:
        candidates = [entry.path for entry in entries if entry.name.startswith(f".{path.name}.{kind}-")]
    for candidate in candidates:
        match = pattern.fullmatch(os.path.basename(candidate))
        if match is None or (match["host"] is not None and match["host"] != host):
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or _process_is_running(pid):
            continue
        if os.path.isdir(candidate) and not os.path.islink(candidate):
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            try:
                os.unlink(candidate)
            except FileNotFoundError:
                pass
            except OSError as error:  # e.g. read-only: the write that follows is refused too, and says so
                if not cannot_write(error):
                    raise
        if not os.path.lexists(candidate):
            removed.append(Path(candidate))
    return removed


def out_of_space(error: BaseException) -> bool:
    """Whether ``error`` says the file system is full (or the quota or file size limit is reached)."""
    return isinstance(error, OSError) and error.errno in OUT_OF_SPACE


def cannot_write(error: BaseException) -> bool:
    """Whether ``error`` says the file system takes no write here: full (:func:`out_of_space`), read-only, or
    no permission."""
    return isinstance(error, OSError) and error.errno in OUT_OF_SPACE + WRITE_REFUSED


def write_failure(error: OSError, path: Path) -> WriteFailure:
    """A failed write of ``path`` as one line for the user: the reason (e.g. "No space left on device",
    "Read-only file system", "Permission denied")."""
    reason = os.strerror(error.errno) if error.errno else (str(error).strip().splitlines() or [type(error).__name__])[0]
    return WriteFailure(f"cannot write {path}: {reason}; nothing was left under that name", error)


def output_directory(directory: Path, output: Path | None = None) -> Path:
    """Create ``directory`` and its parents where missing, to write ``output`` (default: the directory) in.

    Every stage creates its output directories here, so that a file system that refuses (read-only, no
    permission, full) is a :class:`WriteFailure` naming ``output``, not a traceback. Returns ``directory``.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if cannot_write(error):
            raise write_failure(error, Path(output) if output is not None else directory) from None
        raise
    return directory


def _remove(path: Path) -> None:
    """Remove a temporary, file or directory, if it is there (a missing one on a read-only file system raises
    EROFS, not FileNotFoundError: look first)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@contextlib.contextmanager
def atomic_output(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    The temporary name keeps the directory (same filesystem, so the rename is
    atomic) and is removed if the block raises; it ends in ``suffix`` for a
    writer that insists on one (Keras: ``.keras``, ``.weights.h5``). Temporaries
    of ``path`` left by killed processes are removed first. A refused write
    (full disk or quota, read-only file system, no permission), of the
    directory or the file, becomes a :class:`WriteFailure` naming ``path``.
    """
    path = Path(path)
    output_directory(path.parent, path)
    remove_stale_temporaries(path, suffix=suffix)
    temporary = temporary_path(path, suffix=suffix)
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        if cannot_write(error):
            raise write_failure(error, path) from None
        raise
    finally:
        _remove(temporary)


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield an empty staging directory next to ``path``; on success it replaces ``path`` whole.

    What sits at ``path`` is the old directory or the new one, never a mix: the
    old one is renamed aside (``.<name>.old-<host>-<pid>``), the staging
    renamed to ``path``, and the old one removed. Only between the two renames
    is there nothing at ``path``; a process killed there leaves the old one
    aside, and the next writer removes it with the staging a killed run left
    (:func:`remove_stale_temporaries`). If the block raises, the staging is
    removed and ``path`` is untouched. A refused write (full, read-only, no
    permission) anywhere, the staging's files included, is a
    :class:`WriteFailure` naming ``path``. The caller decides whether what is at
    ``path`` may be replaced.
    """
    shown = Path(path)
    path = Path(os.path.abspath(path))  # "." and ".." have no name to put a temporary next to
    output_directory(path.parent, shown)
    for kind in ("tmp", "old"):
        remove_stale_temporaries(path, kind=kind)
    staging = temporary_path(path)
    _remove(staging)
    output_directory(staging, shown)
    try:
        yield staging
        if os.path.lexists(path):
            retired = temporary_path(path, kind="old")
            os.replace(path, retired)
            try:
                os.replace(staging, path)
            except BaseException:
                os.replace(retired, path)
                raise
            _remove(retired)
        else:
            os.replace(staging, path)
    except WriteFailure as failure:
        raise write_failure(failure.error, shown) from None
    except OSError as error:
        if cannot_write(error):
            raise write_failure(error, shown) from None
        raise
    finally:
        _remove(staging)

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
            with contextlib.suppress(FileNotFoundError):
                os.unlink(candidate)
        removed.append(Path(candidate))
    return removed


def out_of_space(error: BaseException) -> bool:
    """Whether ``error`` says the file system is full (or the quota or file size limit is reached)."""
    return isinstance(error, OSError) and error.errno in OUT_OF_SPACE


def write_failure(error: OSError, path: Path) -> RealfakeError:
    """A failed write of ``path`` as one line for the user: the reason (e.g. "No space left on device")."""
    reason = os.strerror(error.errno) if error.errno else (str(error).strip().splitlines() or [type(error).__name__])[0]
    return RealfakeError(f"cannot write {path}: {reason}; nothing was left under that name")


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    The temporary name keeps the directory (same filesystem, so the rename is
    atomic) and is removed if the block raises. Temporaries of ``path`` left by
    killed processes are removed first. A full disk (or quota) while writing
    becomes a RealfakeError naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    temporary = temporary_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        if out_of_space(error):
            raise write_failure(error, path) from None
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()

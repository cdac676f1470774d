"""Writing files that hold people's data, and reading keys: the one way piiguard does either.

Every file piiguard writes that can name a person (subject lists, the notice spool, regulator
reports, evidence, export bundles, the catalog, keys it makes) is created here:

- mode ``0600``; folders piiguard creates for them are ``0700`` (folders that already exist are left
  as they are: they are not piiguard's);
- with ``O_CREAT | O_EXCL | O_NOFOLLOW``: a symlink planted where the file goes is never followed,
  and an existing file is never overwritten;
- unless ``force`` is given (``--force`` on the command line): then the content is written to a
  new temporary file in the same folder and renamed over the old name, so a reader sees the old file
  or the new one, never half of either, and a symlink at that name is *replaced*, never written
  through.

Keys are read the way ssh reads a private key: a key file that its group or others can read is
refused (``permissions 0644 for KEY are too open``), because a key anyone on the host can read
protects nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from piiguard.errors import FileError, FileRefused

FILE_MODE = 0o600
DIR_MODE = 0o700
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def private_dir(path: Path, *, allow_link: bool = False) -> Path:
    """``path`` as a folder; each missing folder on the way is created ``0700``.

    A symlink or a non-folder at ``path`` is refused: what a link points to is not ours to fill —
    unless ``allow_link`` (the catalog's folder: an administrator's link to another disk is common).
    """
    missing: list[Path] = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            pass  # made meanwhile by someone else: checked below like any existing folder
        except OSError as exc:
            raise FileError(f"cannot create the folder {folder} ({exc.strerror})",
                            hint=_space_hint(exc) or "check the path and its permissions") from exc
        else:
            os.chmod(folder, DIR_MODE)  # mkdir's mode is narrowed by the umask, never widened: set it exactly
    st = os.stat(path) if allow_link and os.path.isdir(path) else os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise FileRefused(f"{path} is a symbolic link", hint="name a real folder: piiguard never writes through links")
    if not stat.S_ISDIR(st.st_mode):
        raise FileRefused(f"{path} exists and is not a folder", hint="name a folder")
    return path


def _space_hint(exc: OSError) -> str | None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full: free space and run again"
    return None


def refuse_existing(path: Path) -> None:
    """Raise the refusal :func:`create` would, before slow work whose result would then be thrown away."""
    if os.path.lexists(path):
        raise _exists(path)


def _exists(path: Path) -> FileRefused:
    kind = "a symbolic link" if os.path.islink(path) else "a file"
    return FileRefused(f"{path} already exists ({kind}); piiguard does not overwrite it",
                       hint="name a new path, or pass --force to replace it (atomically; a link is replaced, "
                            "never followed)")


def _open_new(path: Path) -> int:
    return os.open(path, _CREATE, FILE_MODE)


@contextlib.contextmanager
def create(path: Path, *, force: bool = False, text: bool = True) -> Iterator[IO[Any]]:
    """Open ``path`` for writing a new private file (see the module's rules); on leaving the block the
    file is complete, or (on an error) removed, or with ``force`` the old one is still there."""
    path = Path(path)
    private_dir(path.parent)
    if not force:
        try:
            fd = _open_new(path)
        except FileExistsError as exc:
            raise _exists(path) from exc
        except OSError as exc:
            raise FileError(f"cannot create {path} ({exc.strerror})",
                            hint=_space_hint(exc) or "check the path and its permissions") from exc
        target = path
    else:
        if os.path.isdir(path) and not os.path.islink(path):
            raise FileRefused(f"{path} is a folder", hint="name a file")
        for _ in range(8):  # a name taken by chance (or planted) is skipped, never opened
            target = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
            try:
                fd = _open_new(target)
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise FileError(f"cannot create a file beside {path} ({exc.strerror})",
                                hint=_space_hint(exc) or "check the folder's permissions") from exc
        else:
            raise FileError(f"cannot create a temporary file beside {path}")
    try:
        f: IO[Any] = os.fdopen(fd, "w", newline="", encoding="utf-8") if text else os.fdopen(fd, "wb")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if target != path:
            os.replace(target, path)  # rename replaces a link at ``path`` itself, never what it points to
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(target)
        if isinstance(exc, OSError):
            raise FileError(f"cannot write {path} ({exc.strerror})",
                            hint=_space_hint(exc) or "check the disk and the path") from exc
        raise


def write(path: Path, data: str | bytes, *, force: bool = False) -> None:
    """The whole content of a new private file at once (see :func:`create`)."""
    if isinstance(data, str):
        with create(path, force=force) as f:
            f.write(data)
    else:
        with create(path, force=force, text=False) as fb:
            fb.write(data)


def ensure_private_file(path: Path) -> bool:
    """Create an empty private file at ``path`` if none is there (True if created). An existing file is
    left alone; a symlink is refused. The catalog uses this so SQLite opens a file that is already 0600
    (its -wal and -shm files take the database file's mode)."""
    private_dir(path.parent, allow_link=True)
    try:
        os.close(_open_new(path))
    except FileExistsError:
        if os.path.islink(path):
            raise FileRefused(f"{path} is a symbolic link",
                              hint="name the real file: piiguard never writes through links") from None
        return False
    except OSError as exc:
        raise FileError(f"cannot create {path} ({exc.strerror})",
                        hint=_space_hint(exc) or "check the path and its permissions") from exc
    return True


def read_key(path: Path, what: str = "key") -> bytes:
    """A key file's content (surrounding whitespace removed), refused when anyone but its owner can
    read or write it, or when it belongs to another user than this one or root, as ssh refuses a
    private key: another user's file is one that user can replace."""
    path = Path(path)
    try:
        # O_NONBLOCK: a FIFO planted as the key must not hang the command (it is refused below)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileRefused(f"cannot read the {what} file {path} ({exc.strerror})",
                          hint="check the path; the file must be readable by you only") from exc
    try:
        st = os.fstat(fd)  # the file opened, not the name: no swap between check and read
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(f"the {what} file {path} is not a regular file", hint="name the key file itself")
        if st.st_uid not in (0, os.geteuid()):
            raise FileRefused(f"the {what} file {path} belongs to another user (uid {st.st_uid})",
                              hint=f"a {what} file must belong to you or root: chown $(id -u) {path}")
        if st.st_mode & 0o077:
            raise FileRefused(f"permissions {stat.S_IMODE(st.st_mode):04o} for {path} are too open",
                              hint=f"a {what} file must be readable by its owner only: chmod 600 {path}")
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return f.read().strip()
    finally:
        if fd >= 0:
            os.close(fd)

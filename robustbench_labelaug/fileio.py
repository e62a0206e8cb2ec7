"""Atomic file writes (temporary file in the same folder, then ``os.replace``): a reader never sees half a file.

Atomically written files (:func:`atomic_replace`, the one temp-file-then-rename every writer uses) get the mode a
plain ``open()`` would give them (0666 less the umask), the folder is fsynced after the rename, and a folder that
cannot be written is one :class:`UserError`. :class:`RunLock` keeps two processes from writing the same run folder."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import shutil
import socket
import tempfile
import time
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import UserError

NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(folder: str | Path) -> None:
    """Make a rename inside ``folder`` durable (no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def not_writable(path: str | Path, exc: OSError) -> UserError:
    """The one-line error for a file or folder that cannot be written."""
    reason = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
    return UserError(f"cannot write {path} ({reason}): choose a writable output folder (--output) or fix its "
                     "permissions")


def not_a_folder(folder: str | Path) -> UserError | None:
    """The one-line error for an output folder that is an existing file (or lies below one), else None."""
    folder = Path(folder)
    for p in (folder, *folder.parents):
        if p.exists():
            if p.is_dir():
                return None
            return UserError(f"output folder {folder} cannot be created: {p} is a file, not a folder: choose "
                             "another output folder (--output / runtime.output) or move the file")
    return None


def check_output_file(path: str | Path, flag: str, suffixes: Sequence[str] | None = None) -> Path:
    """An output file named by the user, checked before any work: not an existing folder, no file where a parent
    folder should be, and (``suffixes``, e.g. ``(".png", ".pdf")``) a suffix that says its format, so the name
    printed is the file written. Returns it as a Path; one-line :class:`UserError` otherwise."""
    path = Path(path)
    if str(path).endswith(("/", os.sep)) or path.is_dir():
        raise UserError(f"{flag} {path} is a folder: pass the file to write, e.g. {flag} "
                        f"{path / ('out' + (suffixes[0] if suffixes else ''))}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{flag} {path} cannot be written: {parent} is a file, not a folder: choose another "
                                "path")
            break
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise UserError(f"{flag} {path}: '{path.suffix or '(no suffix)'}' is not a format it can write: end the "
                        f"name with one of {', '.join(suffixes)} (e.g. {path.with_suffix(suffixes[0]).name})")
    try:
        check_writable_dir(path.parent)  # before the work, not after it
    except OSError as exc:
        raise UserError(f"{flag} {path} cannot be written ({exc.strerror or type(exc).__name__}): choose a "
                        "writable folder") from None
    return path


def no_space(path: str | Path) -> UserError:
    """The one-line error for a write that ran out of disk space (ENOSPC), naming the file and the space left."""
    path = Path(path)
    try:
        free = shutil.disk_usage(next(p for p in (path.parent, *path.parents) if p.exists())).free
        left = f"{free / 2**20:.1f} MiB free"
    except (OSError, StopIteration):
        left = "free space unknown"
    return UserError(f"no space left on the device writing {path} ({left} there): free some space or choose "
                     "another output folder, then re-run (the files written before are intact; nothing half-written "
                     "was kept)")


def check_writable_dir(folder: str | Path) -> Path:
    """Create ``folder`` (and parents) and prove it is writable by creating and removing a file in it, so a
    run fails before any work rather than after it."""
    folder = Path(folder)
    problem = not_a_folder(folder)
    if problem is not None:
        raise problem
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if exc.errno in NOT_WRITABLE:
            raise not_writable(folder, exc) from None
        if exc.errno == errno.ENOSPC:
            raise no_space(folder / ".write-test") from None
        raise
    return folder


def _temp_name(path: Path) -> Path:
    """A temp name beside ``path``, unique to this call (``.<name>.<random>.tmp``, what
    :func:`remove_stale_temp_files` removes)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def atomic_replace(path: str | Path, fill: Callable[[Path], None], set_mode: bool = True) -> None:
    """THE atomic write: ``fill(tmp)`` creates a temp file beside ``path`` (the caller writes it fully and
    fsyncs it), which is then given mode 0666 less the umask (unless ``set_mode`` is False: a hard link keeps its
    file's mode) and renamed onto ``path``; the folder is fsynced.
    Whatever goes wrong, the temp file is removed and ``path`` is untouched; an unwritable folder is one
    :class:`UserError`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in NOT_WRITABLE:
            raise not_writable(path, exc) from None
        if exc.errno == errno.ENOSPC:
            raise no_space(path) from None
        if exc.errno in (errno.ENOTDIR, errno.EEXIST) and not_a_folder(path.parent) is not None:
            raise not_a_folder(path.parent) from None
        raise
    tmp = _temp_name(path)
    try:
        try:
            fill(tmp)
        except OSError as exc:
            if exc.errno in NOT_WRITABLE and not tmp.exists():
                raise not_writable(path, exc) from None
            raise
        if set_mode:
            set_default_mode(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise no_space(path) from None
        raise
    fsync_dir(path.parent)


def set_default_mode(path: str | Path) -> None:
    """The mode a plain ``open()`` gives a new file: 0666 less the umask."""
    os.chmod(path, 0o666 & ~current_umask())


def fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (mode 0666 less the umask; the folder is fsynced)."""

    def fill(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    atomic_replace(path, fill)


def atomic_savefig(fig: Any, path: str | Path, **kwargs: Any) -> Path:
    """``fig.savefig`` into :func:`atomic_replace`'s temp file, then renamed onto ``path``: a kill while
    matplotlib writes leaves the previous figure (or none), never a truncated one. The format is ``path``'s suffix
    (matplotlib's ``format`` otherwise); one not known to matplotlib is a :class:`UserError`."""
    path = Path(path)
    fmt = kwargs.pop("format", None) or path.suffix[1:].lower() or "png"
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise UserError(f"cannot draw a figure as '.{fmt}' ({path}): use one of "
                        f"{', '.join('.' + f for f in sorted(supported))}")

    def fill(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            fig.savefig(f, format=fmt, **kwargs)
            f.flush()
            os.fsync(f.fileno())

    atomic_replace(path, fill)
    return path


WRITE_LOCK = ".rbla-write.lock"  # the lock of a folder a command writes into outside a run (see output_locks)


@contextlib.contextmanager
def output_locks(paths: Any, what: str):
    """Hold the write lock (:data:`WRITE_LOCK`, a :class:`RunLock`) of every folder ``paths`` lie in, created
    where missing, while a command writes them (``rbla compare --markdown/--plot``, the leaderboard's files): two
    commands writing one folder never interleave (the second is refused in one line). Temp files a killed writer
    left for these names are removed once the lock is held."""
    targets = [Path(p) for p in paths]
    folders = sorted({p.parent.resolve() for p in targets})
    with contextlib.ExitStack() as held:
        for folder in folders:
            check_writable_dir(folder)
            lock = RunLock(folder, WRITE_LOCK, what=what, fix="or write elsewhere").acquire(on_stale=print)
            held.callback(lock.release)
        for p in targets:
            remove_stale_temp_files(p.parent, [p.name])
        yield


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (read in 1 MiB blocks): ``sha256`` for checkpoints and weights, ``md5``
    for the dataset archives that publish MD5 sums."""
    import hashlib

    digest = hashlib.new(algorithm, usedforsecurity=False) if algorithm == "md5" else hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    return file_digest(path, "sha256")


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def remove_stale_temp_files(folder: str | Path, names: list[str]) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files :func:`atomic_write_bytes` (and ``_link_or_copy``) leave behind when
    killed mid-write, for the given file names (globs allowed) in ``folder``; returns what was removed. Call it
    only while holding the folder's :class:`RunLock` (another writer's temp file is not stale)."""
    removed = []
    for name in names:
        for tmp in Path(folder).glob(f".{name}.*.tmp"):
            try:
                tmp.unlink()
                removed.append(tmp)
            except FileNotFoundError:
                pass
    return removed


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy values, tuples and non-finite floats turned into plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if type(obj).__module__.split(".")[0] == "numpy" and hasattr(obj, "tolist"):  # arrays and numpy scalars
        return jsonable(obj.tolist())  # (numpy itself is not imported here: the leaderboard starts without it)
    if isinstance(obj, (Path, str)):
        return str(obj)  # a vocabulary word (a str subclass) as the plain string
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def plain(obj: Any) -> Any:
    """``obj`` with every vocabulary word (any ``str`` subclass) turned into a plain ``str``, inside plain dicts,
    lists and tuples (other containers, e.g. a model's state_dict, are left as they are). For files that must
    not name this package's classes: ``yaml.safe_dump`` refuses a member, and a checkpoint holding one would not
    load with ``torch.load(weights_only=True)`` (JSON writes members as plain strings by itself)."""
    if isinstance(obj, str):
        return str(obj)  # a plain str returns itself
    if type(obj) is dict:
        return {plain(k): plain(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(plain(v) for v in obj)
    return obj


MAX_COMPONENT_CHARS = 120  # a user-given name that becomes one path component (and its suffixes) stays short


def check_component(name: Any, what: str, fix: str = "use letters, digits, '-', '_' or '.'") -> str:
    """``name`` if it is safe as one path component inside a folder the command owns, else one :class:`UserError`.

    The one check every user-given name that becomes a path goes through (a model key, an experiment, an evaluator
    id, a dataset id, a zoo name, ``benchmark(model_name=...)``, a study arm): a non-empty ``str`` of at most
    :data:`MAX_COMPONENT_CHARS` characters, with no path separator (``/``, ``\\``), NUL or other control
    character, no leading or trailing white space, in Unicode NFC form, and not made of dots alone (``.``,
    ``..``): so the path it names
    stays inside its folder and under that folder's lock."""
    if not isinstance(name, str):
        raise UserError(f"{what} must be a name (a string), got {type(name).__name__} {name!r}: {fix}")
    shown = repr(name if len(name) <= 60 else name[:57] + "...")
    problem = None
    if not name:
        problem = "is empty"
    elif len(name) > MAX_COMPONENT_CHARS or len(name.encode("utf-8", "surrogatepass")) > 4 * MAX_COMPONENT_CHARS:
        problem = f"is {len(name)} characters long (at most {MAX_COMPONENT_CHARS})"
    elif any(sep in name for sep in ("/", "\\")) or (os.sep in name) or (os.altsep and os.altsep in name):
        problem = "holds a path separator"
    elif any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in name):
        problem = "holds a control character"
    elif name != name.strip():
        problem = "starts or ends with white space"
    elif set(name) == {"."}:
        problem = "is made of dots alone (a folder, not a name)"
    elif unicodedata.normalize("NFC", name) != name:
        problem = "is not in Unicode NFC form (it would look like another name on screen)"
    if problem is not None:
        raise UserError(f"{what} {shown} {problem}: it names one file or folder; {fix}")
    return name


def names_difference(a: Sequence[Any], b: Sequence[Any]) -> str | None:
    """Where two lists of names (class names) differ, in words a reader can act on, or None: the first position
    that differs, and whether the two names there differ only in Unicode normalisation (NFC vs NFD: they look
    identical on screen) or in count."""
    a, b = [str(x) for x in a], [str(x) for x in b]
    if a == b:
        return None
    i = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), None)
    if i is None:
        return f"{len(a)} vs {len(b)} names"
    x, y = a[i], b[i]
    if unicodedata.normalize("NFC", x) == unicodedata.normalize("NFC", y):
        forms = [next((f for f in ("NFC", "NFD") if unicodedata.normalize(f, n) == n), "mixed") for n in (x, y)]
        return (f"name {i}, {x!r}, is written in two Unicode normalisations ({forms[0]} vs {forms[1]}: they look "
                "identical on screen but are different strings); rename the folders in NFC")
    return f"name {i}: {x!r} vs {y!r}"


def read_json(path: str | Path, fix: str = "delete it to recompute", kind: type | None = dict) -> Any:
    """The JSON value in ``path`` (of type ``kind``, default an object; None: any), else one :class:`UserError`
    naming the file and ``fix``. The one JSON reader: data files are parsed, never run."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} does not exist: {fix}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder, not a JSON file: {fix}") from None
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror}): check its permissions") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        raise UserError(f"{path} is damaged (not valid JSON): {fix}") from None
    if kind is not None and not isinstance(data, kind):
        raise UserError(f"{path} is damaged (not a JSON {'object' if kind is dict else kind.__name__}): {fix}")
    return data


def read_json_or_none(path: str | Path, kind: type | None = dict) -> Any:
    """:func:`read_json` where a damaged or missing file is None (the caller recomputes it, saying so)."""
    try:
        return read_json(path, kind=kind)
    except UserError:
        return None


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(jsonable(obj), indent=2, sort_keys=True) + "\n").encode())


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically; vocabulary words in plain dicts/lists become plain strings (a
    checkpoint must load with ``torch.load(weights_only=True)``)."""
    import torch  # deferred: torch (fileio serves the torch-free leaderboard too)

    buf = io.BytesIO()
    torch.save(plain(obj), buf)
    atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------------------------------------------
# one writer per run folder
# ----------------------------------------------------------------------------------------------------------------


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux ``/proc``; None elsewhere), to tell a reused PID apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``<folder>/<name>`` holding the writer's PID, host and process start time, created exclusively.

    A second process that finds the lock refuses with a :class:`UserError` naming it; a lock left by a process
    that is gone (same host; a reused PID is told apart by its start time) is taken over, with ``on_stale``
    called with a message. ``release()`` (or leaving the ``with`` block) removes the lock."""

    def __init__(self, folder: str | Path, name: str = "rbla.lock", what: str = "run",
                 fix: str = "use another --experiment/--output") -> None:
        self.path = Path(folder) / name
        self.what = what
        self.fix = fix
        self.held = False

    def _record(self) -> dict[str, Any]:
        pid = os.getpid()
        return {"pid": pid, "host": socket.gethostname(), "start": _process_start(pid), "token": uuid.uuid4().hex}

    def _read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def _stale(self, owner: dict[str, Any]) -> bool:
        if not owner:  # empty or garbled: its writer died between creating and filling it (a minute is plenty)
            try:
                return time.time() - self.path.stat().st_mtime > 60
            except FileNotFoundError:
                return False
        if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
            return False
        pid = owner["pid"]
        if not _process_alive(pid):
            return True
        return owner.get("start") is not None and _process_start(pid) not in (None, owner["start"])

    def acquire(self, on_stale=print) -> RunLock:
        record = self._record()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                owner = self._read()
                if owner is None:
                    continue  # released meanwhile: try again
                if not self._stale(owner):
                    who = (f"process {owner.get('pid')} on {owner.get('host')}" if owner.get("pid") else
                           "an unreadable lock")
                    raise UserError(f"{self.path} shows that {who} is writing this {self.what}: wait for it to "
                                    f"finish, {self.fix}, or delete {self.path} if no such process runs") from None
                # move the stale lock aside atomically: of two processes taking over, only one wins the rename
                aside = self.path.with_name(f"{self.path.name}.{record['token']}.stale")
                try:
                    os.replace(self.path, aside)
                except FileNotFoundError:
                    continue
                if (self._stale_record(aside) or {}).get("token") != owner.get("token"):
                    os.replace(aside, self.path)  # someone else's fresh lock: put it back and look again
                    continue
                os.unlink(aside)
                whose = (f"of process {owner.get('pid')} on {owner.get('host')}, which is gone" if owner else
                         "(empty: its writer died while creating it)")
                on_stale(f"took over the stale lock {self.path} {whose}")
                continue
            except OSError as exc:
                if exc.errno in NOT_WRITABLE:
                    raise not_writable(self.path.parent, exc) from None
                raise
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(record, f)
                    f.flush()
                    os.fsync(f.fileno())
            except BaseException as exc:  # e.g. a full disk: leave no empty lock behind
                self.path.unlink(missing_ok=True)
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    raise no_space(self.path) from None
                raise
            self.record, self.held = record, True
            return self
        raise UserError(f"could not take the lock {self.path}: another process keeps taking it; try again")

    @staticmethod
    def _stale_record(path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self.held:
            if (self._read() or {}).get("token") == self.record["token"]:
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
            self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

"""The one engine for parallel work: ``rbla evaluate --jobs N / --address``, ``rbla demo`` (and ``rbla study``).

A run is a list of :class:`Work` items. Each runs as a Ray task (``ray.remote``): its dependencies (``after``)
are passed to it as ObjectRefs, so Ray starts it once they have finished, on whichever node has the resources
it asks for (``num_cpus``: the torch threads it uses; ``num_gpus``: 1 on a CUDA device). A worker that is lost
mid-task (killed, out of memory, a node gone) is retried (``max_retries``); a task that raises stops the run.

**The output is written by the driver only.** A task works in a scratch folder on its node that mirrors the
driver's folders it names (``Work.folders``: name -> driver folder): the files listed in ``Work.seed`` (e.g. a
model's cached parts, for resuming) and every file its dependencies wrote are laid there first; the files the
task writes come back with its result as one object (:class:`Outcome`), and the driver writes them into its
folders atomically. Nodes therefore need the data (datasets, checkpoints given by path) but no shared output
folder; a shared one works as well. The scratch folder is named after the work's arguments, so a retried task
(same node) finds what the lost attempt cached and resumes from it with identical numbers; it is removed once
the task has returned.

Where it runs (:func:`run_works`): ``jobs`` 1 and no address: here, in this process, in order, no Ray at all
(debugging, the quickest start). Otherwise on Ray: ``address`` (``--address``, else Ray's own ``RAY_ADDRESS``)
joins a running cluster; without one a local Ray of ``jobs`` CPUs is started for the run and stopped after it,
on the loopback address only, with Ray's own log lines kept out of the terminal (they stay in Ray's session
folder, named when a task fails).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import UserError
from .fileio import atomic_write_bytes, atomic_write_text

TASK_THREADS = 1  # torch threads per task, wherever it runs (the numbers then do not depend on --jobs)
MAX_RETRIES = 3  # a task whose worker is lost (killed, a node gone) runs again, up to this many times
LOOPBACK = "127.0.0.1"
# Ray on Linux names a node by its first network address; with this set to 0 (read when ray is imported) a
# local Ray and every node started from this process stay on 127.0.0.1, so no traffic leaves the machine
RAY_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
RAY_QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0",     # no usage report sent anywhere
                 "RAY_IGNORE_UNHANDLED_ERRORS": "1"}  # a failed run's cancelled tasks: reported once, by us
SKIPPED_NAMES = ("rbla.lock",)  # never shipped back: a lock left in the scratch folder is the task's own


@dataclass
class Work:
    """One unit of work: ``fn(folders, *args)`` (a module-level function, so a Ray worker can import it), after the
    works named in ``after`` (names not in the run: already done). ``folders`` maps a name to a driver folder the
    work writes into; ``fn`` receives a :class:`Folders` that maps each to where it writes (a scratch copy on its
    node, or the folder itself in-process). ``seed``: (folder name, relative file or sub-folder) the work starts
    with (e.g. what an earlier run cached). ``done(value)`` runs in the driver once its files are written;
    ``log``: the driver file that receives the task's output (Ray runs only; in-process it goes to the terminal).
    ``first``: submitted before the others (long tasks)."""

    name: str
    fn: Callable[..., Any]
    args: tuple = ()
    after: tuple[str, ...] = ()
    folders: Mapping[str, Path] = field(default_factory=dict)
    seed: tuple[tuple[str, str], ...] = ()
    num_cpus: float = TASK_THREADS
    num_gpus: float = 0
    log: Path | None = None
    done: Callable[[Any], None] | None = None
    first: bool = False


@dataclass(frozen=True)
class Folders:
    """The work's folders: ``driver[name]`` is the driver's folder, ``local[name]`` where this task writes it."""

    driver: Mapping[str, Path]
    local: Mapping[str, Path]

    def __getitem__(self, name: str) -> Path:
        return self.local[name]

    def map(self, path: str | Path | None) -> Path | None:
        """A driver path as this task sees it: inside one of the folders -> inside its local copy; else as is."""
        if path is None:
            return None
        p = Path(path).expanduser().absolute()
        for name, root in self.driver.items():
            if p == root or root in p.parents:
                return self.local[name] / p.relative_to(root)
        return Path(path)

    def unmap(self, path: str | Path) -> Path:
        """A path this task wrote, as the driver will have it (the inverse of :meth:`map`)."""
        p = Path(path).absolute()
        for name, root in self.local.items():
            if p == root or root in p.parents:
                return self.driver[name] / p.relative_to(root)
        return Path(path)


@dataclass
class Outcome:
    """What a task returns: ``fn``'s value, the files it wrote ((folder, relative path) -> bytes), its output,
    the Ray node it ran on (None in-process), its wall seconds and the CPU seconds of its process meanwhile."""

    value: Any
    files: dict[tuple[str, str], bytes]
    log: str
    node: str | None
    seconds: float
    cpu_seconds: float = 0.0


class WorkFailed(Exception):
    """A task's error as it travels back to the driver: its message, whether it is a :class:`UserError`, its
    output (traceback included)."""

    def __init__(self, name: str, message: str, user: bool, log: str) -> None:
        super().__init__(name, message, user, log)
        self.name, self.message, self.user, self.log = name, message, user, log

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


AUTO_JOBS_HELP = "the CPU count, at most 4, on a CPU; 1 with CUDA; 1 = all in this process, no Ray"


def add_engine_arguments(parser: Any, what: str, jobs_default: int | None = None,
                         jobs_help: str = AUTO_JOBS_HELP) -> None:
    """The engine's two flags, alike in every command that runs works (``rbla evaluate``, ``demo``, ``study``):
    ``--jobs N`` (Ray tasks side by side on a local Ray; None: :func:`default_jobs`) and ``--address ADDR`` (a Ray
    cluster). ``what``: what the tasks do, for the help text."""
    parser.add_argument("--jobs", type=int, default=jobs_default, metavar="N",
                        help=f"Ray tasks (one torch thread each) that {what} side by side on a local Ray started "
                             f"for the run (default: {jobs_help})")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="run the tasks on the Ray cluster at ADDR (host:port of its head; default: Ray's "
                             "RAY_ADDRESS when set); see docs/cluster.md")


def default_jobs(device: str | None) -> int:
    """Tasks side by side by default: the CPU count (at most 4) on a CPU, 1 with CUDA."""
    import torch

    if device not in ("cpu",) and torch.cuda.is_available():
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def ray_address(address: str | None) -> str | None:
    """The cluster to join: ``address`` (``--address``), else Ray's own ``RAY_ADDRESS``, else None (local)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def _host_port(address: str) -> tuple[str, int | None]:
    host, _, port = address.split("://")[-1].rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else (address, None)


def is_loopback(address: str | None) -> bool:
    return _host_port(address or "")[0] in ("127.0.0.1", "localhost", "::1")


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """A UserError at once when nothing listens at a ``host:port`` cluster address (Ray itself would retry for
    minutes); other forms (``auto``, ``ray://...``) are left to Ray."""
    import socket

    host, port = _host_port(address)
    if port is None or "://" in address:
        return
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise UserError(f"no Ray cluster answers at {address} ({exc.strerror or exc}): start its head first (`ray "
                        "start --head --port PORT`) and pass its host:port, or drop --address / RAY_ADDRESS to run "
                        "on this machine") from None


# -- in the task ------------------------------------------------------------------------------------------------


def _read_tree(root: Path, rel: str) -> dict[str, bytes]:
    """Files at ``root/rel`` (a file, or every file under a folder) -> bytes, keyed by path relative to root."""
    start = root / rel
    if start.is_file():
        return {rel: start.read_bytes()}
    if not start.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(start.rglob("*"))
            if p.is_file() and _shipped(p)}


def _shipped(path: Path) -> bool:
    return path.name not in SKIPPED_NAMES and not (path.name.startswith(".") and path.name.endswith(".tmp"))


def _safe_rel(rel: str) -> str:
    """A relative path that stays inside its folder (task results are ours, but a path is checked once)."""
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ValueError(f"a task returned the path {rel!r}, which leaves its folder")
    return p.as_posix()


def scratch_root(work: Work) -> Path:
    """The work's scratch folder on this node: named after the work and its arguments, so a retry (or a re-run of
    the same work) finds what an interrupted attempt cached, and a work with other arguments starts afresh."""
    key = hashlib.sha256(repr((work.name, work.fn.__module__, work.fn.__qualname__, work.args,
                               sorted((k, str(v)) for k, v in work.folders.items()))).encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / "rbla-work" / key


@contextlib.contextmanager
def _captured(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        yield


def _quiet_warnings() -> None:
    import warnings

    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", category=UserWarning, module="pkg_resources")


def _set_threads(num_cpus: float) -> None:
    try:
        import torch
    except ImportError:  # a work that needs no torch (the engine's own tests)
        return
    torch.set_num_threads(max(1, int(num_cpus)))


def run_in_task(work: Work, seed: dict[tuple[str, str], bytes], *deps: Outcome) -> Outcome:
    """The body of every Ray task: lay the seed and the dependencies' files in the scratch folders, run the work
    with its output captured, and return what it wrote. Its error comes back as :class:`WorkFailed`."""
    started, cpu = time.perf_counter(), time.process_time()
    root = scratch_root(work)
    local = {name: root / "folders" / name for name in work.folders}
    laid: dict[tuple[str, str], bytes] = dict(seed)
    for dep in deps:
        laid.update((k, v) for k, v in dep.files.items() if k[0] in local)
    for (name, rel), data in laid.items():
        target = local[name] / _safe_rel(rel)
        if not (target.is_file() and target.read_bytes() == data):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    for path in local.values():
        path.mkdir(parents=True, exist_ok=True)
    log_path = root / "task.log"
    log_path.unlink(missing_ok=True)
    _quiet_warnings()
    _set_threads(work.num_cpus)
    node = _node_id()
    try:
        with _captured(log_path):
            value = work.fn(Folders({k: Path(v) for k, v in work.folders.items()}, local), *work.args)
    except BaseException as exc:
        log = _read_text(log_path) + traceback.format_exc()
        shutil.rmtree(root, ignore_errors=True)
        message = str(exc) or type(exc).__name__
        for name, path in local.items():  # the driver's paths in the message, not this node's copies
            message = message.replace(str(path), str(work.folders[name]))
        raise WorkFailed(work.name, message, isinstance(exc, UserError), log) from None
    files = {}
    for name, folder in local.items():
        for rel, data in _read_tree(folder, ".").items():
            if laid.get((name, rel)) != data:
                files[(name, rel)] = data
    log = _read_text(log_path)
    shutil.rmtree(root, ignore_errors=True)
    return Outcome(value, files, log, node, time.perf_counter() - started, time.process_time() - cpu)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _node_id() -> str | None:
    try:
        import ray
    except ImportError:
        return None
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


# -- in the driver ----------------------------------------------------------------------------------------------


def submission_order(works: Sequence[Work]) -> list[Work]:
    """The works in submission order: each after the works it names (``first`` ones early), names unique."""
    names = [w.name for w in works]
    if len(set(names)) != len(names):
        raise ValueError(f"work names repeat: {sorted(n for n in set(names) if names.count(n) > 1)}")
    known = set(names)
    pending = sorted(works, key=lambda w: not w.first)  # stable: the given order otherwise
    ordered: list[Work] = []
    placed: set[str] = set()
    while pending:
        ready = next((w for w in pending if (set(w.after) & known) <= placed), None)
        if ready is None:
            raise ValueError(f"works wait for each other: {[w.name for w in pending]}")
        pending.remove(ready)
        ordered.append(ready)
        placed.add(ready.name)
    return ordered


def _seed_files(work: Work) -> dict[tuple[str, str], bytes]:
    files = {}
    for name, rel in work.seed:
        files.update(((name, r), data) for r, data in _read_tree(Path(work.folders[name]), rel).items())
    return files


def _write_outcome(work: Work, outcome: Outcome) -> None:
    for (name, rel), data in sorted(outcome.files.items()):
        atomic_write_bytes(Path(work.folders[name]) / _safe_rel(rel), data)
    if work.log is not None:  # written even when empty: every task of a Ray run has its log file
        Path(work.log).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(work.log, outcome.log)


def _absolute(works: Sequence[Work]) -> list[Work]:
    for w in works:
        w.folders = {k: Path(v).expanduser().absolute() for k, v in w.folders.items()}
    return list(works)


def run_works(works: Sequence[Work], jobs: int = 1, address: str | None = None, progress: bool = True,
              desc: str = "tasks", timings: dict[str, float] | None = None) -> dict[str, Outcome]:
    """Run the works (see the module doc): here when ``jobs`` is 1 and no cluster address is given, else as Ray
    tasks. Returns each work's :class:`Outcome` by name. A failed work stops the run: the works still running are
    cancelled, the finished ones keep their files, and its error is raised here (a :class:`UserError` as one line
    naming the task's log file). ``timings`` receives the seconds Ray took to start (``ray_start``) and to stop
    (``ray_stop``)."""
    if jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
    ordered = submission_order(_absolute(works))
    address = ray_address(address)
    if jobs == 1 and address is None:
        return _run_here(ordered, progress, desc)
    with ray_session(jobs, address, timings):
        return _run_on_ray(ordered, progress, desc)


def _run_here(works: list[Work], progress: bool, desc: str) -> dict[str, Outcome]:
    from tqdm import tqdm

    outcomes = {}
    with tqdm(total=len(works), desc=desc, unit="task", leave=False, disable=not progress) as bar:
        for work in works:
            threads = _torch_threads()
            _set_threads(work.num_cpus)
            started, cpu = time.perf_counter(), time.process_time()
            try:
                value = work.fn(Folders(work.folders, work.folders), *work.args)
            finally:
                if threads is not None:
                    _set_threads(threads)
            outcomes[work.name] = Outcome(value, {}, "", None, time.perf_counter() - started,
                                          time.process_time() - cpu)
            bar.update(1)
            if work.done is not None:
                work.done(value)
    return outcomes


def _torch_threads() -> int | None:
    if "torch" not in sys.modules:
        return None
    return sys.modules["torch"].get_num_threads()


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables (those the user has not set) for the block; restored afterwards."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


@contextlib.contextmanager
def ray_session(jobs: int, address: str | None, timings: dict[str, float] | None = None) -> Iterator[None]:
    """Ray for one run: joined at ``address``, else a local Ray of ``jobs`` CPUs on 127.0.0.1 started here and
    stopped afterwards. A Ray this process had already started is used as it is (and left running). ``timings``
    receives the seconds ``ray_start`` (import and ``ray.init``) and ``ray_stop`` (``ray.shutdown``)."""
    timings = {} if timings is None else timings
    started = time.perf_counter()
    env = dict(RAY_QUIET_ENV)
    if address is None or is_loopback(address):
        env.update(RAY_LOOPBACK_ENV)
    if address is not None:
        check_reachable(address)
    with _environ(env):
        import logging

        import ray  # deferred: importing ray costs ~2 s, which rbla's other commands should not pay

        if ray.is_initialized():
            yield
            return
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.ERROR}
        if address is None:
            options["num_cpus"] = jobs
        else:  # the package's own settings travel with the job (a local Ray inherits them from this process)
            passed = {k: v for k, v in os.environ.items() if k.startswith("RBLA_")}
            if passed:
                options["runtime_env"] = {"env_vars": passed}
        try:  # "local": a new Ray even where `ray start` left one running (only --address / RAY_ADDRESS join one)
            ray.init(address=address or "local", **options)
        except ConnectionError as exc:
            raise UserError(f"cannot join the Ray cluster at {address} ({' '.join(str(exc).split())}): start it "
                            "first (`ray start --head`; with token authentication, export RAY_AUTH_MODE=token and "
                            "its RAY_AUTH_TOKEN here too), or drop --address / RAY_ADDRESS to run on this "
                            "machine") from None
        timings["ray_start"] = time.perf_counter() - started
        try:
            yield
        finally:
            stopping = time.perf_counter()
            ray.shutdown()
            timings["ray_stop"] = time.perf_counter() - stopping


def _run_on_ray(works: list[Work], progress: bool, desc: str) -> dict[str, Outcome]:
    import ray
    from ray.exceptions import RayError
    from tqdm import tqdm

    task = ray.remote(run_in_task)
    refs: dict[str, Any] = {}
    by_ref: dict[Any, Work] = {}
    for work in works:
        deps = [refs[n] for n in work.after if n in refs]
        shipped = replace(work, done=None, log=None)  # the driver's callbacks stay here
        ref = task.options(name=work.name, num_cpus=work.num_cpus, num_gpus=work.num_gpus,
                           max_retries=MAX_RETRIES, retry_exceptions=False).remote(shipped, _seed_files(work), *deps)
        refs[work.name] = ref
        by_ref[ref] = work
    outcomes: dict[str, Outcome] = {}
    pending = list(by_ref)
    with tqdm(total=len(works), desc=desc, unit="task", leave=False, disable=not progress) as bar:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            work = by_ref[ready[0]]
            try:
                outcome = ray.get(ready[0])
            except (RayError, WorkFailed) as exc:
                for ref in pending:  # stop the run: what has finished keeps its files
                    ray.cancel(ref, force=True)
                raise _failure(work, exc, {w.name: w for w in works}) from None
            _write_outcome(work, outcome)
            outcomes[work.name] = outcome
            bar.update(1)
            if work.done is not None:
                work.done(outcome.value)
    return outcomes


def _failure(work: Work, exc: BaseException, by_name: Mapping[str, Work]) -> Exception:
    """The driver's error for a failed task (``work``, or the dependency it waited for): its UserError as one line
    naming its log, else a RuntimeError."""
    cause = getattr(exc, "cause", None)
    failed = cause if isinstance(cause, WorkFailed) else exc if isinstance(exc, WorkFailed) else None
    if failed is None:  # a worker lost more often than it is retried, a node gone, ...
        first = (str(exc).strip().splitlines() or [""])[0]
        return RuntimeError(f"task '{work.name}' was lost ({type(exc).__name__}: {first}); Ray's own logs are in "
                            f"{_ray_logs()}")
    work = by_name.get(failed.name, work)
    if work.log is not None:
        Path(work.log).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(work.log, failed.log)
        log = f" (task '{failed.name}'; its output: {work.log})"
    else:
        log = f" (task '{failed.name}')"
    message = " ".join(failed.message.split())  # one line
    if failed.user:
        return UserError(message + log)
    print(failed.log, file=sys.stderr)
    return RuntimeError(message + log)


def _ray_logs() -> Path:
    """Ray's own log folder on this machine (the head's, for a local Ray)."""
    return Path(tempfile.gettempdir()) / "ray" / "session_latest" / "logs"


__all__ = ["AUTO_JOBS_HELP", "MAX_RETRIES", "add_engine_arguments", "TASK_THREADS", "Folders", "Outcome", "Work", "WorkFailed", "check_reachable", "default_jobs",
           "is_loopback", "ray_address", "ray_session", "run_in_task", "run_works", "scratch_root", "submission_order"]

"""File writes and torch files: a crash or an interrupt never leaves a half-written output behind,
a write that fails names the file and why, and a torch file whose contents changed is refused.

Everything is written to a temporary file in the target's folder and renamed over the target
(os.replace is atomic on one file system).  Renaming also replaces a read-only file that DVC's
link cache may have left, instead of writing into it.  Every writer goes through ``atomic_write``,
so every failed write (no space left, a read-only file system, no permission) is one
``WriteError`` naming the path and the cause.

Every torch file the project writes (checkpoints, resume states, prepared data) is a dict that
carries the SHA-256 of its contents (``content_digest``) under ``DIGEST``; ``load_torch`` checks
it on every load.  ``torch.load`` checks neither the zip's CRCs nor the values, so without it a
flipped byte in a weight tensor would pass as a model.

Every load is ``weights_only``: tensors, dicts, lists, tuples, strings and numbers, never a class
or function the file names.  A pickle can call any function while it is read, before any digest
is checked, and a checkpoint from a shared DVC remote is exactly such a file; so what the project
saves holds plain types only (the torch version as a ``str``, not a ``TorchVersion``; ``save_torch``
refuses anything else), and a file that needs more is refused (``RefusedFile``) naming it and its rebuild, never unpickled.
"""

import collections
import csv
import errno
import hashlib
import io
import json
import os
import re
import uuid
from pathlib import Path

DIGEST = "content_sha256"          # the key of a torch file's content digest


class WriteError(RuntimeError):
    """A file could not be written; the message names the path and the cause."""


class DamagedFile(RuntimeError):
    """A file that exists cannot be read, or its contents are not what was written."""


class RefusedFile(DamagedFile):
    """A torch file that names classes or functions to call while it is read (weights-only loading
    refuses them): written by an older infomax, or by someone else.  It was not unpickled."""


_CAUSES = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exceeded",
           errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
           errno.EPERM: "operation not permitted"}


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True                 # this process's own temp (or a reused pid): never an orphan of it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True                 # exists (another user's), or cannot tell: keep it
    return True


def running_snakemake(folder) -> int | None:
    """The pid of another Snakemake process running in ``folder`` and holding its locks
    (``.snakemake/locks/`` not empty), or None.  Linux (/proc); elsewhere always None.  This process
    and its ancestors are never counted (a job's own Snakemake runs below the main one)."""
    folder = Path(folder).resolve()
    locks = folder / ".snakemake" / "locks"
    if not (locks.is_dir() and any(locks.iterdir())) or not Path("/proc/self").exists():
        return None
    mine, pid = set(), os.getpid()
    while pid > 1:                                  # this process and its ancestors
        mine.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in mine:
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            if any(Path(a.decode(errors="replace")).name == "snakemake" for a in args[:3]) and \
                    "--mode" not in [a.decode(errors="replace") for a in args] and \
                    Path(os.readlink(proc / "cwd")).resolve() == folder:
                return int(proc.name)
        except OSError:
            continue
    return None


def remove_orphans(path) -> list[Path]:
    """Remove the temp files an earlier, killed attempt left next to ``path`` (``.<name>.<pid>.<hex>.tmp``,
    the names ``atomic_write`` uses) whose process is no longer running; return them.  ``path``
    itself, other outputs' temps and a running process's temp are never touched."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]+\.tmp$")
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except FileNotFoundError:
        return removed
    for p in entries:
        m = pattern.match(p.name)
        if m and not _pid_alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def atomic_write(path, write, mode="wb") -> Path:
    """Call ``write(f)`` on a temp file next to ``path``, then rename it over ``path``.

    The temp file is opened normally (not mkstemp), so the result gets the usual umask
    permissions and stays readable by collaborators on a shared file system."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)            # an earlier attempt killed mid-write left these
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, mode) as f:
            write(f)
        os.replace(tmp, path)
    except OSError as e:
        cause = _CAUSES.get(e.errno, e.strerror or str(e))
        raise WriteError(f"cannot write {path}: {cause} (errno {e.errno}); nothing was written there, "
                         f"and what was there before is unchanged") from e
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return path


def content_digest(obj) -> str:
    """SHA-256 of a nested structure of dicts, lists, tensors, arrays and plain values: tensors by
    dtype, shape and bytes; dict keys in sorted order; everything else by its repr."""
    import numpy as np
    import torch

    h = hashlib.sha256()

    def walk(o):
        if isinstance(o, torch.Tensor):
            t = o.detach().cpu().contiguous()
            h.update(f"tensor {t.dtype} {tuple(t.shape)};".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(o, np.ndarray):
            a = np.ascontiguousarray(o)
            h.update(f"array {a.dtype} {a.shape};".encode())
            h.update(a.tobytes())
        elif isinstance(o, dict):
            h.update(f"dict {len(o)};".encode())
            for k in sorted(o, key=repr):
                h.update(f"{k!r}:".encode())
                walk(o[k])
        elif isinstance(o, (list, tuple)):
            h.update(f"{type(o).__name__} {len(o)};".encode())
            for v in o:
                walk(v)
        else:
            h.update(f"{o!r};".encode())

    walk(obj)
    return h.hexdigest()


_PLAIN = (str, int, float, bool, type(None), bytes)


def check_plain(obj, path, where="") -> None:
    """Every value in ``obj`` (nested dicts, lists and tuples) is a tensor or a plain value of
    exactly a plain type, which a weights-only load reads back; else a TypeError naming the key.
    (A ``str`` subclass such as ``torch.__version__``, a numpy value, a Path or a dataclass would
    make the file unreadable without full unpickling.)"""
    import torch

    if isinstance(obj, torch.Tensor) or type(obj) in _PLAIN:
        return
    if type(obj) in (dict, collections.OrderedDict):      # a state_dict is an OrderedDict: weights-only reads it
        for k, v in obj.items():
            if type(k) not in _PLAIN:
                raise TypeError(f"cannot save {path}: key {where}[{k!r}] is a {type(k).__qualname__}")
            check_plain(v, path, f"{where}[{k!r}]")
    elif type(obj) in (list, tuple):
        for i, v in enumerate(obj):
            check_plain(v, path, f"{where}[{i}]")
    else:
        raise TypeError(f"cannot save {path}: {where or 'the object'} is a {type(obj).__module__}."
                        f"{type(obj).__qualname__}, which a weights-only load refuses (store it as a plain "
                        f"str, number, list or dict)")


def save_torch(obj: dict, path) -> Path:
    """``obj`` (a dict) with its content digest, written atomically.  It is serialised in memory
    first, so a full disk fails in the file write (a WriteError naming the path and the cause)
    rather than inside torch's zip writer."""
    import torch

    body = {k: v for k, v in obj.items() if k != DIGEST}     # a loaded file's old digest is not content
    check_plain(body, path)
    buf = io.BytesIO()
    torch.save({**body, DIGEST: content_digest(body)}, buf)
    return atomic_write(path, lambda f: f.write(buf.getbuffer()))


# How torch says that weights-only loading failed (torch >= 2.4); with "GLOBAL <name>" in the
# message, it met a class or function it does not allow (else the stream itself is bad).
_REFUSED = "Weights only load failed"


def load_torch(path, rebuild: str, map_location="cpu") -> dict:
    """The dict a ``save_torch`` wrote at ``path``, read weights-only, its digest checked and
    removed.  ``rebuild`` says what to do about a damaged or refused file (usually "rebuild it:
    <command>"); every error names the file and ends with it."""
    import pickle

    import torch

    path = Path(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if _REFUSED in str(e) and found:
            what = f" ({found.group(1)})"
            raise RefusedFile(f"{path} names a class or function to run while it is read{what}, so it was "
                              f"refused and not unpickled: infomax writes plain tensors, numbers and strings only "
                              f"(a file from an infomax before weights-only loading, or not written by infomax); "
                              f"{rebuild}") from None
        detail = "not a readable torch pickle" if _REFUSED in str(e) else f"{type(e).__name__}: {e}"
        raise DamagedFile(f"{path} is corrupt or truncated ({detail}); {rebuild}") from e
    except Exception as e:  # zip and pickle errors come in many types; all mean the same here
        raise DamagedFile(f"{path} is corrupt or truncated ({type(e).__name__}: {e}); {rebuild}") from e
    if not isinstance(obj, dict) or DIGEST not in obj:
        raise DamagedFile(f"{path} carries no content digest (not written by this version of infomax); "
                          f"{rebuild}")
    want = obj.pop(DIGEST)
    got = content_digest(obj)
    if got != want:
        raise DamagedFile(f"{path} is damaged: its contents hash to {got[:16]}…, but it was written with "
                          f"{want[:16]}… (a bad disk, copy or download changed it); {rebuild}")
    return obj


def rebuild_command(target) -> str:
    """"rebuild it: <the command that rebuilds one output of the workflow (a file or a directory
    output) and then what depends on it>".  An output under results/<experiment>/ names its
    experiment, so the command works whatever params.yaml selects."""
    import shlex

    parts = Path(target).parts
    exp = parts[parts.index("results") + 1] if "results" in parts[:-1] else None
    run = "snakemake --cores all" + (f" --config experiment={shlex.quote(exp)}" if exp else "")
    return f"rebuild it: {run} --force {shlex.quote(str(target))} && {run}"


def save_json(obj, path) -> Path:
    return atomic_write(path, lambda f: json.dump(obj, f, indent=1, allow_nan=True), mode="w")


def save_csv(rows: list[dict], columns: list[str], path) -> Path:
    """rows: dicts with at least ``columns`` as keys (extra keys are an error)."""
    def write(f):
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)

    return atomic_write(path, write, mode="w")


def link_or_copy(src, dest) -> str:
    """Make ``dest`` the file ``src``: a hard link (a copy where the file system has none), then
    stamp ``dest`` with the current time.  The stamp matters to Snakemake, which dates a folder
    output by its own timestamp file: a link keeps its target's older time and would look stale.
    Returns what was done, in words (for the job's log)."""
    src, dest = Path(src), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(dest):
        dest.unlink()
    try:
        os.link(src, dest)
        done = f"linked {dest} -> {src}"
    except OSError as e:
        import shutil

        shutil.copy2(src, dest)
        done = f"copied {src} to {dest} (no hard link: {e})"
    os.utime(dest)
    return done

"""Crash-safe output folders: atomic writes, and the manifest that marks a run folder complete.

Every file the package writes into a run folder goes through :func:`atomic_path` (a temporary
name in the same folder, then ``os.replace``), so a file is either whole or absent. A folder is a
finished run only when its ``manifest.json`` is there: :func:`seal` writes it last, atomically,
naming the command, the package version, the scenario's hash, the seed and every file with its
size and SHA-256. A writer removes the manifest (:func:`unseal`) before it changes anything, so
a run that is interrupted leaves a folder without one. Readers (``report``, ``compare``, a
resumed sweep) go through :func:`verify`, which refuses a folder without a manifest or whose
files do not match it, in one line. :func:`prepare_out` is what every command does with its
``--out`` first: refuse a non-empty folder unless ``--force`` (which clears it, so files of an
earlier run never survive beside a new one), or keep it for a command that resumes.

The manifest holds no timestamp: the same run gives the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import OutputError, RunFolderError

MANIFEST = "manifest.json"
FORMAT = "llmqueue-run-manifest/1"
#: temporary files carry this in their name (``.<stem>.tmp.<pid><suffix>``): never listed, always removable
TMP_TAG = ".tmp."


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and TMP_TAG in path.name


def temporary_name(path: Path) -> Path:
    """``.<stem>.tmp.<pid><suffix>``: hidden, and the suffix kept (writers that pick a format by it)."""
    return path.with_name(f".{path.stem}{TMP_TAG}{os.getpid()}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; write it, and on leaving the block it replaces
    ``path`` in one step (on an exception it is removed and ``path`` is untouched)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("llmqueue")
    except PackageNotFoundError:
        return "0+unknown"


def scenario_hash(scenario: Any) -> str | None:
    """SHA-256 of a scenario (a pydantic model or its JSON dump), keys sorted; None for none."""
    if scenario is None:
        return None
    if hasattr(scenario, "model_dump"):
        scenario = scenario.model_dump(mode="json")
    blob = json.dumps(scenario, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _listed(out: Path) -> list[Path]:
    """Every regular file under ``out`` but the manifest and temporary files, sorted."""
    return sorted(p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST
                  and not any(is_temporary(Path(part)) for part in p.relative_to(out).parts))


def seal(out: str | Path, command: str, scenario: Any = None, seed: int | None = None,
         **info: Any) -> dict:
    """Write ``out/manifest.json`` (last, atomically): the folder is now a complete run of
    ``command``. Lists every file in the folder with its size and SHA-256."""
    out = Path(out)
    if seed is None and isinstance(scenario, dict):
        seed = scenario.get("seed")
    elif seed is None and scenario is not None:
        seed = getattr(scenario, "seed", None)
    files = {p.relative_to(out).as_posix(): {"bytes": p.stat().st_size, "sha256": file_digest(p)}
             for p in _listed(out)}
    manifest = {"format": FORMAT, "command": command, "llmqueue_version": package_version(),
                "scenario_sha256": scenario_hash(scenario), "seed": seed, **info, "files": files}
    write_text(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
    return manifest


def reseal(out: str | Path, old: dict) -> dict:
    """Seal again after adding files (figures) to a folder that ``old`` (its manifest, read and
    removed with :func:`unseal` before the change) sealed: same command and identity, files relisted."""
    out = Path(out)
    files = {p.relative_to(out).as_posix(): {"bytes": p.stat().st_size, "sha256": file_digest(p)}
             for p in _listed(out)}
    manifest = {**old, "files": files}
    write_text(out / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest


def unseal(out: str | Path) -> dict | None:
    """Remove the manifest before changing a folder: until :func:`seal`, it is not a finished run.
    Returns the manifest that was there (for :func:`reseal`), else None."""
    path = Path(out) / MANIFEST
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return old if isinstance(old, dict) else None


def read_manifest(out: str | Path) -> dict:
    """The manifest as written (no check of the files); one-line :class:`RunFolderError` if absent."""
    out = Path(out)
    path = out / MANIFEST
    if not out.is_dir():
        raise RunFolderError(f"{out}: no such folder")
    if not path.is_file():
        raise RunFolderError(f"{out}: no {MANIFEST}, so this is not a finished run (it was interrupted or "
                             f"failed, or was written before llmqueue wrote manifests); run it again with --force")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise RunFolderError(f"{path}: not a readable manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(
            manifest.get("files"), dict):
        raise RunFolderError(f"{path}: not an llmqueue run manifest (format {FORMAT})")
    return manifest


def verify(out: str | Path) -> dict:
    """The manifest of a complete run folder, after checking every file it lists (present, same
    size, same SHA-256). A missing manifest or a mismatch is one :class:`RunFolderError` line."""
    out = Path(out)
    manifest = read_manifest(out)
    for name, meta in manifest["files"].items():
        p = out / name
        if not p.is_file():
            raise RunFolderError(f"{out}: {name} is listed in {MANIFEST} but missing: the folder was changed "
                                 f"after the run; run it again with --force")
        size = p.stat().st_size
        if size != meta.get("bytes"):
            raise RunFolderError(f"{out}: {name} does not match {MANIFEST} ({size} bytes, the manifest says "
                                 f"{meta.get('bytes')}): the folder was changed after the run or mixes two runs; "
                                 f"run it again with --force")
        if file_digest(p) != meta.get("sha256"):
            raise RunFolderError(f"{out}: {name} does not match {MANIFEST} (its SHA-256 differs): the folder "
                                 f"was changed after the run or mixes two runs; run it again with --force")
    return manifest


def _guarded(out: Path) -> str | None:
    """Why ``--force`` must not clear ``out`` (the working folder, home, a source tree), else None."""
    here, res = Path.cwd().resolve(), out.resolve()
    if res == Path(res.anchor) or res == Path.home().resolve() or res in (here, *here.parents):
        return "it is the current folder, one of its parents, your home folder or the root"
    if (res / ".git").exists() or (res / "pyproject.toml").exists():
        return "it looks like a source tree (.git or pyproject.toml)"
    return None


def clear(out: Path) -> None:
    """Remove everything inside ``out`` (the folder stays)."""
    why = _guarded(out)
    if why is not None:
        raise OutputError(f"--force will not clear {out}: {why}; choose an output folder of its own")
    for p in out.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def prepare_out(out: str | Path, *, force: bool = False, resume: bool = False) -> Path:
    """Make ``out`` ready for a new run and return it.

    An unwritable folder is one :class:`OutputError` line. An empty or new folder is used as is.
    A non-empty one is refused unless ``force`` (its contents are removed first) or ``resume``
    (it is kept, minus its manifest: the caller adds to it and seals it again)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test{TMP_TAG}{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(f"cannot write to the output folder {out}: {e.strerror or e}") from None
    for p in out.iterdir():
        if is_temporary(p):        # left by a killed run
            with contextlib.suppress(OSError):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return out
    if resume:
        unseal(out)
    elif force:
        clear(out)
    else:
        what = ("an earlier run" if MANIFEST in entries else
                "files (an unfinished run or something else)")
        raise OutputError(f"the output folder {out} is not empty: it holds {what} ({len(entries)} entries, e.g. "
                          f"{entries[0]}); use --force to replace its contents, or choose another --out")
    return out

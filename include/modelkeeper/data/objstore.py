"""Locations that are a local folder or an object-store URI: the adapter over fsspec/s3fs.

The one module that imports fsspec, s3fs and universal-pathlib (house rule: one adapter
module per volatile library). Everything else holds a `Location`:

- a local path is a plain `pathlib.Path` (the default storage root, byte-for-byte what
  the code did before object stores);
- a URI (`s3://bucket/prefix`, `memory://...`) is a `upath.UPath`, which answers the same
  questions (`/`, `.name`, `.parent`, `.glob`, `.iterdir`, `.exists`, `.is_dir`,
  `.read_text`, `.relative_to`) through fsspec; `str()` of it is the full URI, which is
  what crosses task boundaries (XCom carries URIs, never a host's paths).

Writes, reads of Parquet and copies to local files (for libraries that need a real file:
MLflow's log_artifacts, GX Data Docs) go through the functions here.

S3 endpoint and credentials: `MODELKEEPER_S3_ENDPOINT_URL` (else the standard
`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`) names a non-AWS endpoint; credentials are
whatever botocore's own chain finds (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile,
an instance role). This module never reads or copies a secret. Listing caches are off, so
a process sees objects another host wrote a moment ago.

The atomicity guarantee on object storage: S3 has no rename, but a single PUT is atomic
(readers see the old object or the whole new one, never a part). `atomic_write` lets the
caller write a local temporary file, then uploads it in one PUT; objects of 100 MB and
more go as a multipart upload, which S3 likewise makes visible only when it completes.
A writer killed before the upload leaves nothing under the final key. (The file is read
into memory for the PUT: fine for the Parquet partitions and reports written here.)
Readers rely on S3's strong read-after-write consistency for objects and listings. Multi-object
outputs are committed by writing one object last that readers trust: an ingest run's
manifest record (manifest.py), `batch.json` of a snapshot, `index.html` of Data Docs.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import pandas as pd
    from upath import UPath

Location: TypeAlias = "Path | UPath"

ENDPOINT_VARS = ("MODELKEEPER_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def is_uri(where: object) -> bool:
    """A URI other than file:// (those are local paths)."""
    text = str(where)
    return "://" in text and not text.startswith("file://")


def is_remote(loc: object) -> bool:
    return not isinstance(loc, Path) and is_uri(loc)


def storage_options(protocol: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """fsspec options for `protocol`, from the environment (endpoints only, no secrets)."""
    env = os.environ if env is None else env
    options: dict[str, Any] = {"use_listings_cache": False}
    if protocol in ("s3", "s3a"):
        endpoint = next((env[v] for v in ENDPOINT_VARS if env.get(v)), None)
        if endpoint:
            options["endpoint_url"] = endpoint
    elif protocol == "memory":
        options = {}
    return options


def location(where: str | os.PathLike[str]) -> Location:
    """A Location for a path or URI: local ones become `Path`, URIs a `UPath`."""
    if not isinstance(where, str | Path) and is_uri(where):
        return where  # type: ignore[return-value]  # already a UPath
    text = os.fspath(where) if isinstance(where, os.PathLike) else str(where)
    if text.startswith("file://"):
        return Path(text[len("file://") :])
    if not is_uri(text):
        return Path(text)
    from upath import UPath

    protocol = text.split("://", 1)[0]
    return UPath(text, **storage_options(protocol))


def _fs(loc: Location) -> tuple[Any, str]:
    return loc.fs, loc.path  # type: ignore[union-attr]


# -- writes ---------------------------------------------------------------------------------


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Location:
    """Call `write(tmp)` on a local temporary file, then publish it under `path` at once.

    Local: the temporary file sits beside `path` and is renamed into place. Object store:
    the finished file is uploaded in one PUT (see the module docstring). Either way a
    killed writer never leaves half a file under the final name.
    """
    loc = location(path)
    if not is_remote(loc):
        assert isinstance(loc, Path)
        loc.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{loc.name}.", suffix=".tmp", dir=loc.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            write(tmp)
            os.replace(tmp, loc)
        finally:
            tmp.unlink(missing_ok=True)
        return loc
    with tempfile.TemporaryDirectory(prefix="modelkeeper-put-") as scratch:
        tmp = Path(scratch) / loc.name
        write(tmp)
        put_bytes(loc, tmp.read_bytes())
    return loc


def put_bytes(path: str | os.PathLike[str], data: bytes) -> Location:
    """Publish `data` under `path` whole (one PUT on an object store; rename locally)."""
    loc = location(path)
    if not is_remote(loc):
        return atomic_write(loc, lambda tmp: tmp.write_bytes(data))
    fs, key = _fs(loc)
    fs.pipe_file(key, data)
    return loc


def copy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Location:
    """Copy one file (local or remote, either side) whole."""
    source = location(src)
    if not is_remote(source):
        return atomic_write(dst, lambda tmp: shutil.copyfile(source, tmp))
    return put_bytes(dst, read_bytes(source))


def move(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Location:
    """Move one file whole: a rename locally (a copy and delete across devices), a
    server-side copy and delete on an object store. The source is gone afterwards."""
    source, target = location(src), location(dst)
    if not is_remote(source) and not is_remote(target):
        assert isinstance(target, Path)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            copy(source, target)  # another device: copy whole, then delete
            Path(source).unlink()
        return target
    if is_remote(source) and is_remote(target) and source.protocol == target.protocol:
        fs, key = _fs(source)
        fs.mv(key, _fs(target)[1])
        return target
    copy(source, target)
    source.unlink()
    return target


def upload_tree(local_dir: Path, dst: str | os.PathLike[str], *, last: str | None = None) -> None:
    """Copy a local folder's files under `dst`, `last` (a relative name) after all others,
    so a reader that trusts the folder once `last` exists never sees it half copied."""
    target = location(dst)
    files = sorted(p for p in Path(local_dir).rglob("*") if p.is_file())
    files.sort(key=lambda p: p.relative_to(local_dir).as_posix() == last)
    for f in files:
        put_bytes(target / f.relative_to(local_dir).as_posix(), f.read_bytes())


# -- reads ----------------------------------------------------------------------------------


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    return location(path).read_bytes()


def read_text(path: str | os.PathLike[str]) -> str:
    return read_bytes(path).decode("utf-8")


def exists(path: str | os.PathLike[str]) -> bool:
    return location(path).exists()


def read_parquet(path: str | os.PathLike[str], columns: list[str] | None = None) -> pd.DataFrame:
    import pandas as pd

    loc = location(path)
    if not is_remote(loc):
        return pd.read_parquet(loc, columns=columns)
    return pd.read_parquet(io.BytesIO(read_bytes(loc)), columns=columns)


@contextlib.contextmanager
def local_copy(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A real local file or folder with the contents of `path`, for libraries that need
    one (MLflow's log_artifacts). Local paths are yielded as they are; remote ones are
    downloaded to a temporary folder removed afterwards."""
    loc = location(path)
    if not is_remote(loc):
        yield Path(loc)
        return
    fs, key = _fs(loc)
    with tempfile.TemporaryDirectory(prefix="modelkeeper-get-") as scratch:
        dest = Path(scratch) / loc.name
        if fs.isdir(key):
            fs.get(key.rstrip("/") + "/", str(dest), recursive=True)
            dest.mkdir(exist_ok=True)
        elif fs.exists(key):
            fs.get_file(key, str(dest))
        yield dest


@contextlib.contextmanager
def staged_dir(path: str | os.PathLike[str], *, last: str | None = None) -> Iterator[Path]:
    """A local folder to build a multi-file output in (GX Data Docs); on a clean exit it is
    published under `path`, `last` uploaded after everything else (the commit marker).
    Local paths are yielded as they are (the builder writes in place, as before)."""
    loc = location(path)
    if not is_remote(loc):
        yield Path(loc)
        return
    with tempfile.TemporaryDirectory(prefix="modelkeeper-stage-") as scratch:
        yield Path(scratch)
        upload_tree(Path(scratch), loc, last=last)


def find_info(folder: str, *, recursive: bool = True) -> list[tuple[str, str, dict[str, Any]]]:
    """(full URI, name relative to `folder`, fsspec info) of each file in a URI folder and,
    when `recursive`, the folders below it; in name order. A missing folder gives []."""
    from fsspec.core import url_to_fs

    protocol = folder.split("://", 1)[0]
    fs, path = url_to_fs(folder, **storage_options(protocol))
    path = path.rstrip("/")
    try:
        found = fs.find(path, maxdepth=None if recursive else 1, detail=True)
    except FileNotFoundError:
        return []
    return [
        (fs.unstrip_protocol(p), p[len(path) + 1 :], info)
        for p, info in sorted(found.items())
        if info.get("type") == "file" and p.startswith(path + "/")
    ]


def glob_info(pattern: str) -> list[tuple[str, dict[str, Any]]]:
    """(full URI, fsspec info) of each file matching a URI glob, in name order."""
    from fsspec.core import url_to_fs

    protocol = pattern.split("://", 1)[0]
    fs, path = url_to_fs(pattern, **storage_options(protocol))
    return [
        (fs.unstrip_protocol(p), info)
        for p, info in sorted(fs.glob(path, detail=True).items())
        if info.get("type") == "file"
    ]

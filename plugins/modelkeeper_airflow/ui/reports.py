"""Which file of a run's report folder a /reports URL names, or why none (no FastAPI here).

The report folders (Storage.report_dir: GX Data Docs, Evidently drift reports, model
cards) hold what the stages wrote; the app serves them so the operators' extra links and
the health page open them in the browser. Only report pages and their assets are served,
only from inside the folder: a `..`, an absolute part, a link pointing out of the folder
or a hidden/temporary file (atomic_write's) is refused the same way as a missing one.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path, PurePosixPath

from modelkeeper.data.objstore import Location
from modelkeeper.data.storage import Storage, run_key

SERVED_SUFFIXES = frozenset({".html", ".json", ".md", ".css", ".js", ".png", ".svg"})

# Report pages run their own scripts (Evidently's Plotly, Data Docs' tables). Served from
# the Airflow origin they would read the session cookie; sandboxed they get an opaque
# origin and keep their scripts, links and popups.
SANDBOX_CSP = "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox allow-downloads"


class ReportNotFound(LookupError):
    """No such report file to serve; the message says which part was wrong."""


def report_file(storage: Storage, model: str, run: str, page: str) -> Location:
    """The file `page` (a relative POSIX path) of `run`'s report folder for `model`: a
    local Path, or an object-store location when the storage root is a URI."""
    if run_key(run) != run:
        raise ReportNotFound(f"{run!r} is not a run key")
    parts = PurePosixPath(page).parts
    if not parts or page.startswith("/") or "\\" in page:
        raise ReportNotFound(f"{page!r} is not a relative path")
    if any(p in ("..", ".") or p.startswith(".") for p in parts):
        raise ReportNotFound(f"{page!r}: no '..', '.' or hidden parts")
    if PurePosixPath(page).suffix.lower() not in SERVED_SUFFIXES:
        raise ReportNotFound(f"{page!r}: only report pages and their assets are served")
    folder = storage.report_dir(model, run)
    if storage.remote:  # an object store: keys, no links; the parts are checked above
        path = folder.joinpath(*parts)
    else:
        folder = folder.resolve()
        path = (folder / Path(*parts)).resolve()
        if not path.is_relative_to(folder):  # a symlink out of the folder
            raise ReportNotFound(f"{page!r} points out of the report folder")
    if not path.is_file():
        raise ReportNotFound(f"no {page} in the reports of run {run}")
    return path


def media_type(path: Location) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".md":
        kind = "text/markdown"
    return (
        f"{kind}; charset=utf-8"
        if kind.startswith("text/") or kind.endswith(("json", "javascript"))
        else kind
    )


def existing(storage: Storage, model: str, run_id: str | None, pages: dict[str, str]) -> dict:
    """Of `pages` ({label: page}), those the run's report folder holds: {label: page}."""
    if not run_id:
        return {}
    folder = storage.report_dir(model, run_id)
    return {label: page for label, page in pages.items() if (folder / page).is_file()}

"""Make a built GX Data Docs site render with no internet: inline the CDN assets.

GX 1.x templates load jQuery, Bootstrap, bootstrap-table, Font Awesome and Vega from
CDNs, and the index's rows are drawn by bootstrap-table: offline, the pages render
unstyled and the index looks empty. GX's package templates cannot be overridden
(docs/notes/airflow-ui-facts.md §5), so the built HTML is rewritten instead.

Inlined, not linked: the pages are opened from the MLflow UI's artifact view, which
shows an HTML artifact as a blob in a sandboxed iframe, where no relative URL resolves.
The files are vendored byte-for-byte from npm under `vendor/datadocs/` (versions and
licences in its README). Left out: the dark theme (`bootstrap-prefers-dark.css`, 880 kB
behind `prefers-color-scheme: dark`) and Vega on pages that draw no chart.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from modelkeeper.data.storage import atomic_write

VENDOR = Path(__file__).parent / "vendor" / "datadocs"

# CDN URL (as GX 1.24 templates write it) -> vendored file, or None to drop the tag.
ASSETS: dict[str, str | None] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": "bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": "bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": "bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": "bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": "bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-all.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/vega@5": "vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": None,
}
_VEGA = {"vega.min.js", "vega-lite.min.js", "vega-embed.min.js"}
_LOGO_SRC = re.compile(
    r'src="https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/logo-long\.png[^"]*"'
)
# GX's icons are `fas`/`far` (Font Awesome 6 Free); the brand and v4/v5 alias faces would
# each inline their font again.
_OTHER_FACES = re.compile(r'@font-face\{font-family:"(?!Font Awesome 6 Free")[^}]*\}')

_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=\"(https?://[^\"]+)\"[^>]*>\s*</script>", re.I)
_LINK = re.compile(r"<link\b[^>]*\bhref=\"(https?://[^\"]+)\"[^>]*>", re.I)
_FONT = re.compile(r"url\(\.\./webfonts/([\w.-]+)\.(woff2|ttf)\)( format\(\"\w+\"\))?,?")
# Loads from elsewhere that would still go to the network (anchors are fine: a click).
_REMOTE = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(https?://[^\"]+)\"", re.I)


class OfflineDocsError(RuntimeError):
    """A page references a CDN asset this module has no vendored copy of."""


def remote_loads(html: str) -> list[str]:
    """URLs the page would fetch from the network when it opens (scripts, styles, images)."""
    return _REMOTE.findall(html)


def make_offline(site_dir: Path) -> int:
    """Rewrite every page of the site in place; returns how many pages were rewritten.

    Raises OfflineDocsError naming the URL when a page loads an asset that is not
    vendored (a GX upgrade that changed a CDN URL), so the change is noticed.
    """
    pages = sorted(Path(site_dir).rglob("*.html"))
    for page in pages:
        html = inline_assets(page.read_text(encoding="utf-8"))
        atomic_write(page, lambda tmp, html=html: tmp.write_text(html, encoding="utf-8"))
    return len(pages)


def inline_assets(html: str) -> str:
    charts = "vegaEmbed(" in html

    def script(match: re.Match) -> str:
        name = _vendored(match.group(1))
        if name is None or (name in _VEGA and not charts):
            return ""
        # A literal "</script" inside the code would end the element early.
        code = _asset(name).replace("</script", "<\\/script")
        return f"<script>{code}</script>"

    def link(match: re.Match) -> str:
        url = match.group(1)
        if "stylesheet" not in match.group(0) or url not in ASSETS:
            return match.group(0)  # not a stylesheet (e.g. a favicon); left to the check below
        name = _vendored(url)
        return "" if name is None else f"<style>{_asset(name)}</style>"

    html = _SCRIPT.sub(script, html)
    html = _LINK.sub(link, html)
    html = _LOGO_SRC.sub(f'src="{_data_uri("logo-long.png")}"', html)
    left = remote_loads(html)
    if left:
        raise OfflineDocsError(f"Data Docs page loads {left[0]!r}, which is not vendored")
    return html


def _vendored(url: str) -> str | None:
    if url not in ASSETS:
        raise OfflineDocsError(f"Data Docs page loads {url!r}, which is not vendored")
    return ASSETS[url]


def _asset(name: str) -> str:
    text = (VENDOR / name).read_text(encoding="utf-8")
    if name == "fontawesome-all.min.css":
        text = _FONT.sub(_font, _OTHER_FACES.sub("", text))
    return text


def _font(match: re.Match) -> str:
    stem, ext = match.group(1), match.group(2)
    if ext == "ttf":  # every browser that runs these pages takes woff2; keep pages small
        return ""
    return f'url({_data_uri(f"webfonts/{stem}.woff2")}) format("woff2")'


def _data_uri(name: str) -> str:
    mime = {"woff2": "font/woff2", "png": "image/png"}[name.rsplit(".", 1)[1]]
    path = VENDOR / name if name.startswith("webfonts/") else _gx_images() / name
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _gx_images() -> Path:
    import great_expectations  # already imported by whoever built the site

    return Path(great_expectations.__file__).parent / "render" / "view" / "static" / "images"

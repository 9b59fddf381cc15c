"""Copy the front-end assets installed from npm into the package's static folder.

Run at set-up (``make setup`` calls ``python -m nominal.web.assets node_modules``).
Pages load these files from the hub itself; nothing is ever loaded from a CDN.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

VENDOR = Path(__file__).parent / "static" / "vendor"

# (file or folder inside node_modules, destination inside static/vendor)
ASSETS: tuple[tuple[str, str], ...] = (
    ("govuk-frontend/dist/govuk/govuk-frontend.min.css", "govuk/govuk-frontend.min.css"),
    ("govuk-frontend/dist/govuk/govuk-frontend.min.js", "govuk/govuk-frontend.min.js"),
    ("govuk-frontend/dist/govuk/assets", "govuk/assets"),
    ("htmx.org/dist/htmx.min.js", "htmx/htmx.min.js"),
    ("leaflet/dist/leaflet.js", "leaflet/leaflet.js"),
    ("leaflet/dist/leaflet.css", "leaflet/leaflet.css"),
    ("leaflet/dist/images", "leaflet/images"),
    ("vega/build/vega.min.js", "vega/vega.min.js"),
    ("vega-lite/build/vega-lite.min.js", "vega/vega-lite.min.js"),
    ("vega-embed/build/vega-embed.min.js", "vega/vega-embed.min.js"),
    # Vega expressions without eval (the pages' Content-Security-Policy forbids it).
    ("vega-interpreter/build/vega-interpreter.js", "vega/vega-interpreter.js"),
    ("axe-core/axe.min.js", "axe/axe.min.js"),
)


def install(node_modules: Path, vendor: Path = VENDOR) -> list[Path]:
    """Copy every asset; raise FileNotFoundError naming the first one missing."""
    copied: list[Path] = []
    for source, dest in ASSETS:
        src = node_modules / source
        dst = vendor / dest
        if not src.exists():
            raise FileNotFoundError(f"{src} is missing: run `npm ci` first")
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
        copied.append(dst)
    return copied


def main(argv: list[str]) -> int:
    node_modules = Path(argv[1]) if len(argv) > 1 else Path("node_modules")
    try:
        copied = install(node_modules)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"installed {len(copied)} front-end assets into {VENDOR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

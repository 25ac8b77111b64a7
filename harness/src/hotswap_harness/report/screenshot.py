"""A PNG of an HTML page, rendered by Debian's headless Chromium (``apt-get install chromium``).

Chromium runs with a fresh throw-away profile and with networking extras off; the page is loaded from a
``file://`` URL. The PNG captures the window (``width`` x ``height`` CSS pixels); ``full_page=True`` renders a
window ``max_height`` tall and crops the blank space below the page's end. The result is written atomically.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from hotswap.errors import HotswapError
from hotswap.io import atomic_write_bytes

CHROMIUM = Path("/usr/bin/chromium")


class ChromiumError(HotswapError, RuntimeError):
    """Chromium is missing, or it did not write the screenshot."""


def find_chromium(path: Path | None = None) -> Path:
    """``path`` if given, else ``/usr/bin/chromium``, else ``chromium`` on PATH; :class:`ChromiumError` if absent."""
    for candidate in ((path,) if path is not None else (CHROMIUM, shutil.which("chromium"))):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ChromiumError(f"chromium not found at {path or CHROMIUM}; "
                        "install Debian's chromium: apt-get install chromium")


def chromium_command(chromium: Path, html: Path, png: Path, profile: Path, width: int, height: int) -> list[str]:
    return [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
            f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={width},{height}",
            Path(html).resolve().as_uri()]


def crop_blank_bottom(data: bytes, margin: int = 24) -> bytes:
    """The PNG ``data`` without the uniform rows at its bottom (the window below the page's end), plus ``margin``."""
    from io import BytesIO

    import numpy as np
    from PIL import Image

    image = Image.open(BytesIO(data)).convert("RGB")
    pixels = np.asarray(image)
    differs = (pixels != pixels[-1:, :1, :]).any(axis=(1, 2))  # rows not all the bottom-left pixel's colour
    last = int(np.flatnonzero(differs)[-1]) if differs.any() else 0
    out = BytesIO()
    image.crop((0, 0, image.width, min(image.height, last + 1 + margin))).save(out, format="PNG", optimize=True)
    return out.getvalue()


def screenshot(html: Path, png: Path, width: int = 1400, height: int = 2200, *, full_page: bool = False,
               max_height: int = 30000, chromium: Path | None = None, timeout_s: float = 180.0) -> Path:
    """Render ``html`` in headless Chromium and save a ``width`` x ``height`` PNG at ``png``; returns ``png``.

    ``full_page=True`` ignores ``height``: the window is ``max_height`` tall and the blank bottom is cropped.
    """
    html, png = Path(html), Path(png)
    if not html.is_file():
        raise FileNotFoundError(f"{html}: no such HTML file")
    binary = find_chromium(chromium)
    with tempfile.TemporaryDirectory(prefix="hotswap-chromium-") as tmp:
        shot = Path(tmp) / "shot.png"
        cmd = chromium_command(binary, html, shot, Path(tmp) / "profile", width, max_height if full_page else height)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as e:
            raise ChromiumError(f"chromium took more than {timeout_s:.0f} s to render {html}") from e
        if not shot.is_file() or shot.stat().st_size == 0:
            tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-8:])
            raise ChromiumError(f"chromium (exit {proc.returncode}) wrote no screenshot of {html}:\n{tail}")
        data = shot.read_bytes()
        return atomic_write_bytes(png, crop_blank_bottom(data) if full_page else data)

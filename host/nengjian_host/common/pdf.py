"""A report's PDF, printed from its self-contained HTML by headless Chromium (Debian's chromium package).

Owns: finding Chromium (NJ_CHROMIUM naming the executable, else /usr/bin/chromium, chromium-browser,
or chromium on PATH), the flags a headless print needs on a crew's laptop or a CI box (no sandbox,
no GPU, no network chatter, a throw-away profile), and printing one HTML file to one PDF. The
commissioning report and the ledger report both print through here; the HTML stays the source, so
a machine without Chromium still has the report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


class PdfError(RuntimeError):
    """No PDF was written: the text says why and what to do; `zh` says it in Chinese."""

    def __init__(self, en: str, zh: str):
        super().__init__(en)
        self.zh = zh


class NoChromium(PdfError):
    """Chromium is not on this machine."""


def chromium() -> str | None:
    """The Chromium executable to print with, or None."""
    forced = os.environ.get("NJ_CHROMIUM")
    if forced is not None:
        return forced if forced and os.access(forced, os.X_OK) else None
    for p in CHROMIUM:
        if os.path.exists(p):
            return p
    return shutil.which("chromium")


def print_pdf(html_path: Path, pdf_path: Path, timeout: float = 120) -> Path:
    """Print `html_path` to `pdf_path` (the page size its CSS asks for, no header or footer). Returns the
    PDF's path; NoChromium or PdfError (bilingual, naming the fix) when none was written."""
    from nengjian_host.common.messages import both

    exe = chromium()
    if not exe:
        raise NoChromium(*both("err.pdf.no_chromium"))
    pdf_path = Path(pdf_path)
    if pdf_path.exists():
        pdf_path.unlink()  # a stale PDF is never taken for this print
    with tempfile.TemporaryDirectory(prefix="nj-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, "--user-data-dir=" + profile, "--no-pdf-header-footer",
               "--print-to-pdf=" + str(pdf_path), Path(html_path).resolve().as_uri()]
        try:
            subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError) as e:
            raise PdfError(*both("err.pdf.failed", reason=e)) from None
    if not (pdf_path.exists() and pdf_path.stat().st_size > 0):
        raise PdfError(*both("err.pdf.none", exe=exe))
    return pdf_path

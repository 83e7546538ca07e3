"""Headless Chromium (Debian's package) for the tests that look at what a person sees: the status page
(test_status_page) and the commissioning report (test_commissioning). Runs it, checks a screenshot
shows something, and refreshes the pictures docs/ shows from them: with NJ_UPDATE_DOC_IMAGES=1 only,
so a test run never writes into the checkout unless asked."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from nengjian_host.common.paths import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The closed network refuses what Chromium asks on its own: without these flags it waits on them.
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--lang=zh-CN"]
DOC_IMAGES = ROOT / "docs" / "images"


def chromium(tmp: Path, *args: str) -> str:
    """Chromium's stdout for `args` (a URL last), in a profile of its own under `tmp`."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: CI installs it (make browser)")
        pytest.skip("chromium is not installed (make browser)")
    profile = tmp / ("chromium-profile-%d" % len(list(tmp.glob("chromium-profile-*"))))
    cmd = [CHROMIUM] + CHROMIUM_FLAGS + ["--user-data-dir=%s" % profile] + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, "chromium failed (%d): %s" % (proc.returncode, proc.stderr[-2000:])
    return proc.stdout


def screenshot(tmp: Path, url: str, name: str, width: int, height: int) -> Path:
    """A PNG of the first `width` x `height` pixels of the page at `url`, checked to show something."""
    shot = tmp / name
    chromium(tmp, "--screenshot=%s" % shot, "--window-size=%d,%d" % (width, height), url)
    assert_not_blank(shot)
    return shot


def assert_not_blank(png: Path) -> None:
    """A page that failed to render (a blank or one-colour picture) fails here: its grey levels must
    spread, and some of its pixels (text and rules: a few per cent of a page that is mostly white) must
    differ from the background. The status page's picture: spread 34, 17 % off the background."""
    from PIL import Image, ImageStat

    with Image.open(png) as im:
        grey = im.convert("L")
        spread = ImageStat.Stat(grey).stddev[0]
        hist = grey.histogram()
    inked = 1 - max(hist) / sum(hist)
    assert spread > 20 and inked > 0.02, "%s looks blank: grey-level spread %.1f, %.1f %% of pixels off the " \
                                         "background" % (png.name, spread, inked * 100)


def refresh_doc_image(shot: Path, name: str) -> None:
    """Copy `shot` to docs/images/NAME when NJ_UPDATE_DOC_IMAGES=1 (the pictures docs/INSTALLER.md shows)."""
    if os.environ.get("NJ_UPDATE_DOC_IMAGES") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOC_IMAGES / name)

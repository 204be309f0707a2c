#!/usr/bin/env python3
"""Screenshot of a report in headless Chromium (Debian's chromium and chromedriver), e.g. for docs/report.png.

python scripts/report_screenshot.py results/demo/pbmc_zarr/report.html docs/report.png --height 2400
"""

from __future__ import annotations

import base64
from pathlib import Path

import click
from selenium import webdriver
from selenium.webdriver.chrome.service import Service


@click.command()
@click.argument("page", type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--width", default=1280, show_default=True)
@click.option("--height", default=2400, show_default=True, help="pixels of the page from its top")
def main(page: str, out: str, width: int, height: int) -> None:
    """Save the top HEIGHT pixels of PAGE as a PNG at OUT."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(Path(page).resolve().as_uri())
        clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True})
        Path(out).write_bytes(base64.b64decode(shot["data"]))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()

"""The reports of a real run, as a person sees them: files per dataset, the summary, and the page in a browser."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import yaml

from conftest import run_pipeline

pytestmark = pytest.mark.pipeline

DATASETS = ("pbmc_h5ad", "pbmc_zarr")
SECTIONS = ["run", "metrics", "tree", "stability", "umap", "contingency", "markers"]


@pytest.fixture(scope="module")
def run(testdata, tmp_path_factory):
    work = tmp_path_factory.mktemp("report_run")
    return run_pipeline(
        work,
        "--input",
        str(testdata["samplesheet"]),
        "--resolutions",
        "0.5,1.0",
        "--hierarchy",
        "2",
        "--umap_colors",
        "bulk_labels",
        "--label_columns",
        "bulk_labels,batch",
        "--stability_bootstraps",
        "2",
        "--markers",
        "true",
        # 174,400 stored values: three MARKERS_SUMS tasks, whose sums MARKERS adds up (checked against scanpy below)
        "--markers_task_entries",
        "60000",
    ).ok()


@pytest.mark.parametrize("dataset", DATASETS)
def test_report_per_dataset(run, dataset):
    out = run.outdir / dataset
    text = (out / "report.html").read_text()
    assert [m for m in re.findall(r'<section id="([^"]+)">', text)] == SECTIONS
    plots = {p.name for p in (out / "plots").glob("*.png")}
    for column in ("leiden_0.5_1", "leiden_1.0_1", "leiden_0.5_2", "leiden_1.0_2"):
        assert f"umap_{column}.png" in plots
        assert f">{column}</td>" in text
    assert {"umap_bulk_labels.png", "umap_batch.png", "tree_leiden_resolutions.png", "tree_leiden_0.5_levels.png"} <= plots
    assert "stability_leiden.png" in plots
    # the Markers section: the recommended column's dot plot and its level 2 within the parent cluster
    assert any(p.startswith("markers_rank_genes_groups_leiden_") and "_1_" in p for p in plots)
    assert any(p.startswith("markers_rank_genes_groups_leiden_") and "_2_within_parent_" in p for p in plots)
    # the real metrics.json: its recommended column is highlighted and drawn against both label columns
    recommended = re.search(r'<tr class="recommended"><td class="code">([^<]+)</td>', text).group(1)
    assert recommended == ad.read_zarr(out / "clustering.zarr").uns["scclust"]["recommended"]["leiden"]
    assert {f"contingency_{recommended}_bulk_labels.png", f"contingency_{recommended}_batch.png"} <= plots
    assert "Rule:" in text
    assert text.count('<img src="data:image/png;base64,') == len(plots)
    assert not re.search(r"https?://", text)
    stats = yaml.safe_load((out / f"{dataset}_mqc.yaml").read_text())
    assert stats["data"][dataset]["cells"] == 700
    assert (out / f"{dataset}_mqc.tsv").read_text().startswith("# id: 'scclust_metrics'")
    assert not (out / "summary.json").exists() and not (out / "versions.yml").exists()


def test_markers_in_the_store_work_with_scanpy_and_match_it(run):
    trace = next((run.outdir / "pipeline_info").glob("execution_trace_*.txt")).read_text()
    assert len(re.findall(r"MARKERS_SUMS \(pbmc_zarr part \d\)", trace)) == 3
    out = run.outdir / "pbmc_zarr"
    adata = ad.read_zarr(out / "clustering.zarr")
    columns = adata.uns["scclust"]["columns"]
    for column in columns:
        df = sc.get.rank_genes_groups_df(adata, group=None, key=f"rank_genes_groups_{column}")
        assert len(df) == 100 * adata.obs[column].nunique() and df["pct_nz_reference"].notna().all()
    assert "rank_genes_groups_leiden_1.0_2_within_parent" in adata.uns
    matplotlib.use("Agg")
    sc.pl.rank_genes_groups_dotplot(adata, key="rank_genes_groups_leiden_1.0_1", n_genes=3, show=False)
    # scanpy's own call on the published store (its raw matrix) gives the same ranking
    ref = adata.copy()
    sc.tl.rank_genes_groups(ref, "leiden_1.0_1", method="t-test", pts=True, n_genes=100, key_added="ref")
    mine = adata.uns["rank_genes_groups_leiden_1.0_1"]
    for group in ref.uns["ref"]["names"].dtype.names:
        assert list(mine["names"][group]) == list(ref.uns["ref"]["names"][group])
        np.testing.assert_allclose(mine["pvals"][group], ref.uns["ref"]["pvals"][group], rtol=1e-10, atol=0)
        np.testing.assert_array_equal(mine["scores"][group], ref.uns["ref"]["scores"][group])
    table = pd.read_csv(out / "markers.tsv", sep="\t")
    assert set(table["column"]) == set(columns)
    level2 = table[table["level"] == 2]
    assert level2["parent"].notna().all() and level2["rank_within"].notna().any()
    assert (table[table["level"] == 1]["rank"].groupby([table["column"], table["cluster"]]).max() == 100).all()


def test_summary_report_links_every_dataset(run):
    text = (run.outdir / "report.html").read_text()
    for dataset in DATASETS:
        assert f'href="{dataset}/report.html"' in text
        assert (run.outdir / dataset / "report.html").exists()
    assert "<h2>Clusters per resolution</h2>" in text and text.count('<img src="data:image/png;base64,') == 1


def browser():
    """Headless Chromium through selenium and Debian's chromedriver, logging every network event of the page."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver must be installed under CI (.ci/run installs them with apt)")
        pytest.skip("chromium or chromedriver not installed (apt-get install chromium chromium-driver) and CI is not set")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1600"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


def open_page(driver, path: Path) -> list[str]:
    """Load a file and return the URL of every request the page made (Chrome DevTools Network events)."""
    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.readyState")
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_report_in_a_real_browser(run, tmp_path):
    driver = browser()
    try:
        page = run.outdir / "pbmc_zarr" / "report.html"
        urls = open_page(driver, page)
        assert page.resolve().as_uri() in urls, "the network log must see at least the page itself"
        outside = [u for u in urls if not u.startswith(("file://", "data:"))]
        assert not outside, f"the report fetched from the network: {outside}"
        images = driver.execute_script("return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        assert len(images) == len(list((page.parent / "plots").glob("*.png")))
        assert all(complete and width > 0 for _, complete, width in images), images
        sections = driver.execute_script("return Array.from(document.querySelectorAll('section[id]')).map(s => s.id)")
        assert sections == SECTIONS
        assert driver.save_screenshot(str(tmp_path / "report.png"))
        assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        summary_urls = open_page(driver, run.outdir / "report.html")
        assert all(u.startswith(("file://", "data:")) for u in summary_urls), summary_urls
    finally:
        driver.quit()


def test_browser_check_sees_a_network_request(tmp_path):
    """The network check itself: a page that loads an outside image must be caught."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    driver = browser()
    try:
        assert "http://127.0.0.1:9/x.png" in open_page(driver, page)
    finally:
        driver.quit()

"""JupyterLab in a real browser: open notebook 01, run every cell, see the manifest tables.

Headless Debian Chromium, driven by Playwright (its own browser download cannot work offline).
"""

import secrets
import shutil
import subprocess
import sys
import time

import requests
from conftest import ROOT, free_port, require

NOTEBOOK = "01-one-tag-many-platforms.ipynb"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def test_notebook_01_runs_in_jupyterlab_in_chromium(lab_status, tmp_path):
    chromium = shutil.which("chromium")
    require(chromium is not None, "needs Debian's chromium (make test installs it)")
    from playwright.sync_api import sync_playwright

    served = tmp_path / "notebooks"  # a copy: JupyterLab may autosave what it opens
    shutil.copytree(ROOT / "notebooks", served, ignore=shutil.ignore_patterns("build"))
    port, token = free_port(), secrets.token_hex(16)  # the token never leaves this process
    # No "get notified about Jupyter news?" prompt over the screenshot (and no request to the internet).
    news = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={served}",
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}", "--LabServerApp.user_settings_dir="
         f"{tmp_path / 'settings'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if requests.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}, timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            _menu(page, "Edit", "Clear Outputs of All Cells")
            outputs = page.locator(".jp-Notebook .jp-OutputArea-output table")
            assert outputs.count() == 0  # what follows is this run's output, not the stored one
            _menu(page, "Run", "Run All Cells")
            page.wait_for_selector(".jp-OutputArea-output table >> text=exact match for linux/arm64", timeout=180_000)
            page.wait_for_selector(".jp-OutputArea-output table >> text=Raspberry Pi Zero", timeout=180_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=180_000)
            page.wait_for_timeout(1000)
            text = page.locator(".jp-Notebook").inner_text()
            assert "no image for linux/arm/v7 in this index" in text
            assert "M2 Mac (Docker Desktop)" in text and "Intel Mac (Docker Desktop)" in text
            assert page.locator(".jp-OutputArea-output table").count() >= 3
            assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
            shot = ROOT / "results" / "local" / "browser-01-one-tag-many-platforms.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.locator(".jp-OutputArea-output table >> text=exact match for linux/arm64").scroll_into_view_if_needed()
            page.screenshot(path=str(shot))
            browser.close()
        assert shot.stat().st_size > 20_000
    finally:
        server.terminate()
        server.wait(timeout=30)


def _menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()

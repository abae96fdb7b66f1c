"""axe-core, the accessibility checker, injected into a page in Chromium: its violations.

axe-core comes from npm (a pinned version) into .axe/ at the repository's top,
installed the first time a test needs it (scripts/_axe.sh makes sure npm is there).
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

AXE_VERSION = "4.11.0"
AXE_DIR = Path(__file__).resolve().parents[2] / ".axe"
AXE_SCRIPT = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]})
  .then(result => done(result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + ": " + n.failureSummary)}))))
  .catch(error => done([{id: "axe-failed", help: String(error), nodes: []}]));
"""


@cache
def axe_source() -> str:
    if not AXE_SCRIPT.exists() or _installed_version() != AXE_VERSION:
        AXE_DIR.mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR),
                        f"axe-core@{AXE_VERSION}"], check=True, capture_output=True, timeout=600)
    return AXE_SCRIPT.read_text()


def _installed_version() -> str | None:
    import json

    package = AXE_SCRIPT.parent / "package.json"
    return json.loads(package.read_text()).get("version") if package.exists() else None


def violations(driver) -> list[dict]:
    """The page's accessibility violations (each rule with up to five of its elements)."""
    driver.execute_script(axe_source())
    driver.set_script_timeout(60)
    return driver.execute_async_script(RUN_AXE)


def dark_mode(driver, dark: bool) -> None:
    """Make the page's prefers-color-scheme dark (or light again)."""
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})

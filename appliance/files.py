"""Where the files beside the package are: entrypoint.sh, conf/, migrations/, init-db/.

In a checkout (and the image, which installs it editable) they are the
top-level ones beside appliance/; an installed wheel carries copies in
appliance/_files/ (setup.py puts them there), found first when present.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def app_file(name: str) -> Path:
    packaged = PACKAGE / "_files" / name
    return packaged if packaged.exists() else PACKAGE.parent / name

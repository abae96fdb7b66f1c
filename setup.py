"""The wheel also carries the files the programs need beside the package.

In a checkout, entrypoint.sh, conf/, migrations/ and init-db/ sit beside
appliance/; an installed wheel has no checkout, so the build copies them into
appliance/_files/ (appliance.files finds them either way). Everything else is
in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BESIDE_THE_PACKAGE = ("entrypoint.sh", "conf", "migrations", "init-db")


class BuildPyWithFiles(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install runs from the checkout, which has them
        target = Path(self.build_lib) / "appliance" / "_files"
        shutil.rmtree(target, ignore_errors=True)  # nothing left from an earlier build
        target.mkdir(parents=True)
        for name in BESIDE_THE_PACKAGE:
            if Path(name).is_dir():
                shutil.copytree(name, target / name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(name, target / name)


setup(cmdclass={"build_py": BuildPyWithFiles})

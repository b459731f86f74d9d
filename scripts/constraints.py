"""Write ``constraints.txt`` from this checkout's ``.venv``, and pin ``environment.yml`` to the same versions.

    make constraints    # after `make test` passed: the versions CI last passed with

``make setup`` installs with ``pip -c constraints.txt``, so a class installing next year gets these versions. The
file holds public versions only (a local build's ``2.14.1+cpu`` is written ``2.14.1``), no hashes, and none of the
packages that only a CUDA build of PyTorch pulls in on Linux (``nvidia-*``, ``triton``): it is valid on Linux, macOS
and Windows. ``tests/test_constraints.py`` checks that ``environment.yml`` names the same versions.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CUDA_ONLY = re.compile(r"^(nvidia-|triton$)", re.I)
CONDA_NAMES = {"torch": "pytorch"}  # conda-forge's name where it differs from PyPI's


def frozen() -> dict[str, str]:
    """Every package installed here but fruitlib itself: name -> public version."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True, check=True
    ).stdout
    pins = dict(line.split("==", 1) for line in listed.splitlines() if "==" in line)
    return {
        name: version.split("+")[0]
        for name, version in sorted(pins.items(), key=lambda p: p[0].lower())
        if not CUDA_ONLY.match(name)
    }


def pin_environment(text: str, pins: dict[str, str]) -> str:
    """``environment.yml`` with each package it names pinned to ``pins``' version."""
    by_name = {name.lower(): version for name, version in pins.items()}
    by_name |= {conda: by_name[pypi] for pypi, conda in CONDA_NAMES.items() if pypi in by_name}

    def pin(match: re.Match) -> str:
        name = match.group(2)
        version = by_name.get(name.lower())
        return f"{match.group(1)}{name}=={version}" if version else match.group(0)

    return re.sub(r"^(\s+- )([A-Za-z0-9_.-]+)(?:[<>=!~]=?[^\s#]*)?$", pin, text, flags=re.M)


def main() -> None:
    pins = frozen()
    header = "# Written by `make constraints` (scripts/constraints.py): the versions CI last passed with.\n"
    (ROOT / "constraints.txt").write_text(header + "".join(f"{n}=={v}\n" for n, v in pins.items()))
    environment = ROOT / "environment.yml"
    environment.write_text(pin_environment(environment.read_text(), pins))
    print(f"constraints.txt: {len(pins)} packages; environment.yml pinned to the same versions")


if __name__ == "__main__":
    main()

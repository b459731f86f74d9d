"""constraints.txt (what `make setup` installs) and environment.yml (for conda) name the same versions."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from constraints import CONDA_NAMES, pin_environment  # noqa: E402


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def test_constraints_are_public_versions_valid_on_every_platform():
    for name, version in pins().items():
        assert re.fullmatch(r"[\w.!]+", version), f"{name}=={version}: a public version, no local label or hash"
        assert not name.lower().startswith("nvidia-"), f"{name} is only for a CUDA build on Linux"
    assert {"torch", "torchvision", "numpy", "myst-nb", "playwright"} <= {n.lower() for n in pins()}


def test_environment_yml_names_the_versions_of_the_constraints():
    environment = (ROOT / "environment.yml").read_text()
    assert pin_environment(environment, pins()) == environment, "run `make constraints`"
    named = re.findall(r"^\s+- ([A-Za-z0-9_.-]+)==", environment, flags=re.M)
    pypi = {conda: name for name, conda in CONDA_NAMES.items()}
    lower = {n.lower() for n in pins()}
    assert len(named) > 20 and all(pypi.get(n, n).lower() in lower for n in named)

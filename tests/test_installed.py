"""fruitlib as a user gets it from ``pip install``: a wheel, installed into a folder of its own, used from another
folder, with no checkout around it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_folder_data

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources, installed with ``pip install --no-deps --target``."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "fruitlib", source / "fruitlib", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(base / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (base / "dist").glob("fruitlib-*.whl")
    target = base / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def test_an_installed_wheel_trains_evaluates_and_predicts_from_any_folder(installed, tmp_path, isolated):
    work = tmp_path / "elsewhere"
    work.mkdir()
    data = make_folder_data(tmp_path / "fruit")
    env = os.environ | {"PYTHONPATH": str(installed), "PYTHONWARNINGS": "ignore", "HOME": str(tmp_path / "home")}
    env.pop("FRUITLIB_CACHE")  # the user's cache folder (under this HOME), as an installed package finds it
    env.pop("XDG_CACHE_HOME", None)
    where = run("-c", "import fruitlib.files as f; print(f.__file__, f.checkout())", cwd=work, env=env)
    assert where.stdout.split() == [str(installed / "fruitlib" / "files.py"), "None"], where.stderr

    trained = run(
        "-m",
        "fruitlib",
        "train",
        "--data",
        str(data),
        "--out",
        "run",
        "--backbone",
        "efficientnet_lite0",
        "--epochs",
        "2",
        "--image-size",
        "32",
        "--views",
        "0",
        "--device",
        "cpu",
        cwd=work,
        env=env,
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (tmp_path / "home" / ".cache" / "fruitlib").is_dir()  # platformdirs' cache folder, not the checkout's

    new = tmp_path / "new"
    shutil.copytree(data / "kiwi", new / "kiwi")
    scored = run(
        "-m", "fruitlib", "evaluate", "--checkpoint", "run/model.pt", "--data", str(new), "--json", cwd=work, env=env
    )
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert json.loads(scored.stdout)["split"] == "all" and json.loads(scored.stdout)["n_images"] == 6

    photo = next(new.glob("kiwi/*.jpg"))
    guessed = run("-m", "fruitlib", "predict", "--checkpoint", "run/model.pt", str(photo), cwd=work, env=env)
    assert guessed.returncode == 0 and guessed.stdout.startswith(str(photo)), guessed.stderr[-2000:]

    series = run("-m", "fruitlib", "series", cwd=work, env=env)
    assert series.returncode == 2 and "--notebooks" in series.stderr and "Traceback" not in series.stderr

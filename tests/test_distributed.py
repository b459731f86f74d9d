"""Data-parallel training under torchrun: 2 CPU processes with gloo, on tiny generated photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch
from torch.utils.data import TensorDataset

from fruitlib import distributed
from fruitlib.checkpoint import load_checkpoint
from fruitlib.distributed import World
from fruitlib.errors import FruitlibError
from fruitlib.run import RUN_FILES

REPO = Path(__file__).resolve().parents[1]
# The same global batches give the same steps; what may differ is the order in which the gradients of the two halves
# of a batch are summed, which moves float32 weights by rounding only.
TOLERANCE = 1e-5


def torchrun(processes: int, *args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        "-m",
        "fruitlib",
        "train",
        *map(str, args),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=os.environ | {"PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_global_batch_is_shared_out_evenly_or_refused():
    assert distributed.local_batch(64, World(0, 2, True)) == 32
    assert distributed.local_batch(64, World()) == 64
    with pytest.raises(FruitlibError, match="divide evenly among the 3 processes: e.g. 63"):
        distributed.local_batch(64, World(0, 3, True))


def test_the_processes_batches_together_are_the_global_batches_of_one_order():
    data = TensorDataset(torch.arange(24))
    one = list(distributed.train_sampler(data, 5, World(0, 1, True)))
    shares = [list(distributed.train_sampler(data, 5, World(rank, 2, True))) for rank in range(2)]
    batch = 4  # global 8
    for k in range(3):
        together = sorted(shares[0][k * batch : (k + 1) * batch] + shares[1][k * batch : (k + 1) * batch])
        assert together == sorted(one[k * 2 * batch : (k + 1) * 2 * batch])
    assert sorted(shares[0] + shares[1]) == list(range(24))  # every photo once per epoch


@pytest.mark.parametrize("photos, processes", [(111, 2), (111, 4), (3, 4), (8, 1)])
def test_the_validation_shares_hold_every_photo_exactly_once(photos, processes):
    shares = [list(distributed.val_share(photos, World(rank, processes, True))) for rank in range(processes)]
    assert sorted(sum(shares, [])) == list(range(photos))


def test_without_torchrun_a_world_of_one_that_does_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with distributed.session("cpu") as here:
        assert here == World() and here.main and not here.active
        assert distributed.total([1.0, 2.0], here) == [1.0, 2.0]


def frozen_head(run: Path) -> dict:
    return {k: v for k, v in load_checkpoint(run / "model.pt")["model"].items() if k.startswith("head")}


def test_two_processes_take_the_steps_of_one_over_the_same_global_batches(folder_data, tmp_path):
    """Frozen mode, so no batch-norm layer trains: each process's half-batch gradient, averaged, is the global one."""
    common = [
        "--data",
        folder_data,
        "--backbone",
        "efficientnet_lite0",
        "--mode",
        "frozen",
        "--image-size",
        "32",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--views",
        "1",
    ]
    one = torchrun(1, *common, "--out", tmp_path / "one")
    two = torchrun(2, *common, "--out", tmp_path / "two")
    assert one.stdout.count("validation accuracy") == 1 and two.stdout.count("validation accuracy") == 1
    for name, expected in (("one", 1), ("two", 2)):
        for kind in ("params", "metrics"):
            recorded = json.loads((tmp_path / name / f"{kind}.json").read_text())
            assert (recorded["world_size"], recorded["global_batch_size"]) == (expected, 8)
    first, second = frozen_head(tmp_path / "one"), frozen_head(tmp_path / "two")
    assert first.keys() == second.keys() and first
    gap = max((first[k] - second[k]).abs().max().item() for k in first)
    print(f"largest weight difference: {gap:.2e}")
    assert gap < TOLERANCE, gap
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(set(RUN_FILES) - {"skipped.csv"})


def test_two_processes_train_the_whole_network_and_resume_it(folder_data, tmp_path):
    common = [
        "--data",
        folder_data,
        "--out",
        tmp_path / "run",
        "--backbone",
        "efficientnet_lite0",
        "--mode",
        "full",
        "--image-size",
        "32",
        "--batch-size",
        "8",
    ]
    torchrun(2, *common, "--epochs", "1")
    saved = (tmp_path / "run" / "model.pt").read_bytes()
    torchrun(2, *common, "--resume", "--epochs", "2")
    assert (tmp_path / "run" / "model.pt").read_bytes() != saved
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["world_size"] == 2
    # the processes' validation shares, summed, score the final model as rank 0 alone scores every photo
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["epoch"].tolist() == [1, 2] and history["val_acc"].iloc[-1] == metrics["val_accuracy"]


def test_a_killed_process_leaves_the_last_checkpoint_to_resume(folder_data, tmp_path):
    """SIGKILL the writing process (rank 0) mid-run: torchrun stops the other, model.pt still loads and resumes."""
    run = tmp_path / "run"
    common = [
        "--data",
        folder_data,
        "--out",
        run,
        "--backbone",
        "efficientnet_lite0",
        "--mode",
        "frozen",
        "--image-size",
        "32",
        "--batch-size",
        "8",
    ]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "fruitlib",
        "train",
        *map(str, common),
        "--epochs",
        "100000",
    ]
    launcher = psutil.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "model.pt").is_file():
            assert time.monotonic() < deadline and launcher.poll() is None, "no checkpoint was written"
            time.sleep(0.2)
        time.sleep(1.0)
        [writer] = [p for p in launcher.children(recursive=True) if p.environ().get("RANK") == "0"]
        writer.kill()
        assert launcher.wait(timeout=120) != 0
    finally:
        if launcher.poll() is None:
            launcher.kill()
    done = len(load_checkpoint(run / "model.pt")["training"]["history"])
    assert done >= 1
    torchrun(2, *common, "--resume", "--epochs", str(done + 1))
    assert json.loads((run / "metrics.json").read_text())["epochs"] == done + 1

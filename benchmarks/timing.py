"""A whole ``python -m fruitlib train`` in a subprocess with a cold cache of its own: wall time, CPU time, peak memory."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def timed_train(args: list[str], out: Path, cache: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``fruitlib train --out out *args`` with ``$FRUITLIB_CACHE=cache``; its metrics and its resource use.

    Peak memory is the child's own peak RSS (``os.wait4``); the log is ``out``'s sibling ``<out>.log``.
    """
    command = [sys.executable, "-m", "fruitlib", "train", "--out", str(out), *args]
    log_path = out.with_name(out.name + ".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env=os.environ | {"FRUITLIB_CACHE": str(cache)} | (env or {}))
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted: do not leave the training run behind
            process.kill()
            process.wait()
            raise
        wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n" + log_path.read_text()[-3000:])
    rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux
    return {"command": " ".join(command), "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_bytes": rss, "peak_rss_gib": rss / 2**30,
            "metrics": json.loads((out / "metrics.json").read_text())}

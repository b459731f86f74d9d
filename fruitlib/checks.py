"""Checkpoints for students: a printed claim that should hold, and what to do when it does not.

A notebook's checks are the places where a student compares what they see with what they should see. Each prints
one line that ends in ``True`` when all is well (the line nbval compares), and one more line, only when it is
``False``, saying what to do.
"""

from __future__ import annotations


def expect(claim: str, ok: bool, otherwise: str) -> bool:
    """Print ``Checkpoint: <claim>: <ok>``; when ``ok`` is false, also print ``otherwise`` (what to do)."""
    ok = bool(ok)
    print(f"Checkpoint: {claim}: {ok}")
    if not ok:
        print(f"  Not what you should see. {otherwise}")
    return ok

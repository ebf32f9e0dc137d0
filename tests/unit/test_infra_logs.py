"""Throw-away workers' logs are pruned to the newest few of their family; nothing else in the folder is touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.procs import prune_logs

pytestmark = pytest.mark.unit


def test_only_the_newest_of_the_family_stay(tmp_path: Path) -> None:
    names = [f"vigil-streams-it-{n:08x}.log" for n in range(30)]
    others = ["kafka.log", "vigil-bench-floor-0000000a.log", "vigil-streams-it-special.log", "vigil-streams-it-1.txt"]
    for age, name in enumerate(reversed(names + others)):
        path = tmp_path / name
        path.write_text(name)
        os.utime(path, (1_000_000 - age, 1_000_000 - age))  # later in the list = newer

    removed = prune_logs(tmp_path, f"vigil-streams-it-{'?' * 8}.log", keep=20)

    assert sorted(p.name for p in removed) == sorted(names[:11])  # 19 kept, room for the worker about to start
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[11:] + others)
    assert prune_logs(tmp_path, f"vigil-streams-it-{'?' * 8}.log", keep=20) == []  # already pruned

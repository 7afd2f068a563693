"""Test-wide set-up: every test gets its own state directory.

A `Site` that runs accrues earnings into SQLite under the state dir; without this, tests (and
the subprocesses they start, which inherit the environment) would write into the developer's
~/.local/state/hashpivot and share one ledger between unrelated tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    state_home = tmp_path_factory.mktemp("xdg-state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state_home))
    return state_home / "hashpivot"

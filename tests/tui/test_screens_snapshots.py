"""Screenshots of the detail screen, the help screen and a confirmation modal at 80x24 and
160x48, on the fixed site (a frozen snapshot with history, and a real audit log)."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.tui.app import HashpivotApp
from console.tui.messages import OpenDevice
from tests.tui.site_fixtures import DETAIL_DEVICE, FixedSite


def app(tmp_path: Path) -> HashpivotApp:
    return HashpivotApp(FixedSite(tmp_path), operator="night-shift")


async def open_detail(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(0.5)  # the first tick
    await pilot.app.site.seed_audit()
    pilot.app.post_message(OpenDevice(DETAIL_DEVICE))
    await pilot.pause(0.6)


async def open_confirm(pilot) -> None:  # type: ignore[no-untyped-def]
    await open_detail(pilot)
    await pilot.press("c")
    await pilot.pause(0.5)


async def open_help(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(0.5)
    await pilot.press("question_mark")
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_detail_screen(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app(tmp_path), terminal_size=size, run_before=open_detail)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_confirm_modal(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app(tmp_path), terminal_size=size, run_before=open_confirm)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_help_screen(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app(tmp_path), terminal_size=size, run_before=open_help)


def test_detail_screen_no_color(  # type: ignore[no-untyped-def]
    snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With NO_COLOR every state still reads: words and symbols, not colours."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(app(tmp_path), terminal_size=(80, 24), run_before=open_detail)

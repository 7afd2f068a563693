"""The state-directory tool: create a site, fault a GPU, inject an XID, show, reset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulators import gpu_state
from simulators.gpu_tool import main


def test_tool_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "site")
    assert main(["create", d, "rtx4090", "h100"]) == 0
    uuids = [line.split()[1] for line in capsys.readouterr().out.splitlines()]
    site = gpu_state.load_site(d)
    assert uuids == [g.uuid for g in site.gpus]

    assert (
        main(
            [
                "fault",
                d,
                "1",
                "lost=true",
                "ambient_c=40",
                'call_errors={"nvmlDeviceGetFanSpeed": "NOT_SUPPORTED"}',
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["lost"] is True and out["ambient_c"] == 40
    faults = gpu_state.get_faults(d, site.gpus[1].uuid)
    assert faults.call_errors == {"nvmlDeviceGetFanSpeed": "NOT_SUPPORTED"}

    assert main(["xid", d, uuids[0][:12], "79"]) == 0
    assert gpu_state.StateReader(d).xid_events(0)[0].xid == 79
    gpu_state.Registration(d, uuids[0], name="me", used_memory_bytes=1 << 30)
    assert main(["show", d]) == 0
    shown = capsys.readouterr().out
    assert '"lost": true' in shown and "pid" in shown and "1024 MiB" in shown
    assert main(["reset", d, "0"]) == 1  # a process is attached
    assert main(["clear", d, "1"]) == 0
    assert gpu_state.get_faults(d, uuids[1]) == gpu_state.Faults()
    assert main(["driver", d, "unloaded"]) == 0
    assert gpu_state.StateReader(d).site_faults().driver_not_loaded
    with pytest.raises(SystemExit):
        main(["fault", d, "0", "on_fire=true"])
    with pytest.raises(SystemExit):
        main(["fault", d, "9", "lost=true"])

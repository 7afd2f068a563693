"""The `[[gpus]]` and `[workloads]` config tables: defaults, every key, and each rule's problem
naming the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

from console.config import DEFAULT_MINER_STOP, Problem, check_config, load_config

MINIMAL = '[site]\nname = "lab"\nstate_dir = "state"\n'
UUID = "GPU-5f0c1b2e-8a3d-4c4e-9b1a-0d2f3e4a5b6c"
UUID2 = "GPU-00000000-1111-2222-3333-444444444444"


def gpu(name: str = "rig1-gpu0", uuid: str = UUID, extra: str = "") -> str:
    return (
        f'\n[[gpus]]\nname = "{name}"\nuuid = "{uuid}"\n'
        'miner_argv = ["t-rex", "-a", "kawpow", "--api-bind-http", "127.0.0.1:{api_port}"]\n'
        f"miner_api_port = 4067\n{extra}"
    )


def problems(tmp_path: Path, text: str) -> list[Problem]:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return check_config(path)


def test_defaults(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(MINIMAL + gpu())
    config = load_config(path)
    (entry,) = config.gpus
    assert entry.initial_mode == "mining" and entry.miner_api_dialect == "trex"
    assert entry.miner_stop == DEFAULT_MINER_STOP and not entry.privileged
    assert [s.signal for s in entry.miner_stop] == ["SIGINT", "SIGTERM", "SIGKILL"]
    wl = config.workloads
    assert wl.min_dwell_s == 600 and wl.min_gain_fraction == 0.12
    assert wl.verify_free_timeout_s == 30 and wl.verify_poll_s == 0.5
    assert config.gpu_min_dwell_s(entry) == 600
    assert config.jobs_path == tmp_path / "state" / "jobs"


def test_every_key(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + (
            '[workloads]\njobs_dir = "/srv/jobs"\nmin_dwell_s = 900\nmin_gain_fraction = 0.2\n'
            "verify_free_timeout_s = 45\nverify_poll_s = 0.25\nfree_memory_tolerance_bytes = 1024\n"
            "launch_confirm_timeout_s = 30\nminer_ready_timeout_s = 240\njob_grace_s = 120\n"
            "job_kill_wait_s = 10\nwatch_interval_s = 2\nmax_attempts = 3\n"
            "miner_restart_backoff_max_s = 120\n"
        )
        + gpu(
            extra=(
                'model = "RTX 4090"\ninitial_mode = "ai"\nminer_api_dialect = "lolminer"\n'
                'miner_stop = [{ signal = "SIGTERM", wait_s = 30 },\n'
                '  { signal = "SIGKILL", wait_s = 5 }]\n'
                "min_dwell_s = 300\nai_power_limit_w = 350\nmining_power_limit_w = 280\n"
                'privileged = true\ntags = ["rig1"]\n'
            )
        )
    )
    path = tmp_path / "site.toml"
    path.write_text(text)
    config = load_config(path)
    (entry,) = config.gpus
    assert entry.model == "RTX 4090" and entry.initial_mode == "ai"
    assert [(s.signal, s.wait_s) for s in entry.miner_stop] == [("SIGTERM", 30), ("SIGKILL", 5)]
    assert config.gpu_min_dwell_s(entry) == 300 and entry.ai_power_limit_w == 350
    assert config.jobs_path == Path("/srv/jobs") and config.workloads.max_attempts == 3


def test_stop_sequence_must_end_with_sigkill(tmp_path: Path) -> None:
    text = MINIMAL + gpu(extra='miner_stop = [{ signal = "SIGINT", wait_s = 15 }]\n')
    (problem,) = problems(tmp_path, text)
    assert problem.key_path == "gpus[0].miner_stop"
    assert "must end with SIGKILL" in problem.message and "SIGKILL" in problem.hint
    assert problem.line == 10


def test_unknown_signal_names_the_valid_ones(tmp_path: Path) -> None:
    text = MINIMAL + gpu(
        extra='miner_stop = [{ signal = "SIGSTOP", wait_s = 1 },\n'
        '  { signal = "SIGKILL", wait_s = 5 }]\n'
    )
    (problem,) = problems(tmp_path, text)
    assert problem.key_path == "gpus[0].miner_stop[0].signal"
    assert "SIGINT" in problem.message


def test_bad_uuid_and_unknown_placeholder(tmp_path: Path) -> None:
    text = MINIMAL + (
        '\n[[gpus]]\nname = "g"\nuuid = "0"\nminer_argv = ["t-rex", "--gpu={gpu_index}"]\n'
    )
    found = {p.key_path: p for p in problems(tmp_path, text)}
    assert "GPU UUID" in found["gpus[0].uuid"].message
    assert "{gpu_index}" in found["gpus[0].miner_argv[1]"].message
    assert "{api_port}" in found["gpus[0].miner_argv[1]"].hint


def test_api_port_placeholder_needs_a_port(tmp_path: Path) -> None:
    text = MINIMAL + (
        f'\n[[gpus]]\nname = "g"\nuuid = "{UUID}"\nminer_argv = ["t-rex", "{{api_port}}"]\n'
    )
    (problem,) = problems(tmp_path, text)
    assert problem.key_path == "gpus[0].miner_argv" and "miner_api_port" in problem.hint


def test_mining_without_a_miner_is_a_problem(tmp_path: Path) -> None:
    text = MINIMAL + f'\n[[gpus]]\nname = "g"\nuuid = "{UUID}"\n'
    (problem,) = problems(tmp_path, text)
    assert problem.key_path == "gpus[0].initial_mode" and "idle" in problem.hint
    ok = MINIMAL + f'\n[[gpus]]\nname = "g"\nuuid = "{UUID}"\ninitial_mode = "idle"\n'
    assert problems(tmp_path, ok) == []


def test_duplicate_uuid_port_and_name(tmp_path: Path) -> None:
    text = MINIMAL + gpu("a") + gpu("a")
    found = {p.key_path: p for p in problems(tmp_path, text)}
    assert set(found) == {"gpus[1].name", "gpus[1].uuid", "gpus[1].miner_api_port"}
    assert "already used by gpus[0]" in found["gpus[1].uuid"].message
    assert found["gpus[1].uuid"].line == 13


def test_workloads_bounds(tmp_path: Path) -> None:
    text = MINIMAL + "[workloads]\nverify_poll_s = 0\nmax_attempts = 0\n"
    found = {p.key_path for p in problems(tmp_path, text)}
    assert found == {"workloads.verify_poll_s", "workloads.max_attempts"}

"""Tests for console.config: the schema, every kind of problem, and the shipped config files."""

from __future__ import annotations

import ast
import ipaddress
import textwrap
from pathlib import Path

import msgspec
import pytest

from console.config import (
    PERSONAS,
    AsicConfig,
    ConfigError,
    PollerConfig,
    Problem,
    SiteConfig,
    bundled_demo_path,
    check_config,
    format_problem,
    load_config,
)

REPO = Path(__file__).resolve().parents[2]

MINIMAL = '[site]\nname = "lab"\n'


def write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[Problem]:
    return check_config(write(tmp_path, text))


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [format_problem(p) for p in problems]
    return problems[0]


def asic(name: str, host: str, extra: str = "") -> str:
    return f'[[asics]]\nname = "{name}"\nhost = "{host}"\n{extra}\n'


# ---- valid configs ---------------------------------------------------------------------------


def test_minimal_config_takes_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.site.name == "lab"
    assert config.poller == PollerConfig()
    assert config.poller.max_concurrency == 256
    assert config.poller.asic_poll_interval_s == 30.0
    assert config.host.enabled is True
    assert config.host.interval_s == 5.0
    assert config.asics == ()


def test_full_config_decodes_every_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [site]
        name = "north_hall-2"
        state_dir = "/var/lib/hashpivot"

        [poller]
        max_concurrency = 64
        asic_poll_interval_s = 20
        asic_timeout_s = 4.5
        backoff_max_s = 120.0
        stale_after_s = 50
        lost_after_s = 200

        [host]
        enabled = false
        interval_s = 10

        [[asics]]
        name = "rack1-s19jpro-01"
        host = "192.0.2.21"
        port = 4029
        model = "Antminer S19j Pro"
        privileged = true
        poll_interval_s = 60
        timeout_s = 2.0
        password_env = "WM_ADMIN_PASS"
        tags = ["row1", "hydro"]

        [[asics]]
        name = "sim.1"
        host = "127.0.2.1"
        model = "Whatsminer M50"
        password_file = "/etc/hashpivot/sim.pass"
        [asics.simulate]
        persona = "whatsminer"
        faults = "quirk=Q3"
        seed = 7

        [[asics]]
        name = "v6"
        host = "2001:db8::1"

        [[asics]]
        name = "by-name"
        host = "miner-7.example.net"
        """,
    )
    config = load_config(path)
    assert config.site.state_dir == "/var/lib/hashpivot"
    assert config.poller.asic_poll_interval_s == 20.0
    assert isinstance(config.poller.asic_poll_interval_s, float)
    assert config.host.enabled is False
    first, sim, v6, by_name = config.asics
    assert first.port == 4029
    assert first.privileged is True
    assert first.tags == ("row1", "hydro")
    assert first.password_env == "WM_ADMIN_PASS"
    assert first.simulate is None
    assert sim.port == 4028
    assert sim.simulate is not None
    assert sim.simulate.persona == "whatsminer"
    assert sim.simulate.faults == "quirk=Q3"
    assert sim.simulate.seed == 7
    assert v6.host == "2001:db8::1"
    assert by_name.privileged is False


def test_structs_are_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + asic("a", "192.0.2.1")))
    with pytest.raises(AttributeError):
        config.site.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        config.asics[0].port = 1  # type: ignore[misc]


def test_asic_timing_falls_back_to_poller_defaults(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + "[poller]\nasic_poll_interval_s = 20.0\nasic_timeout_s = 4.0\nbackoff_max_s = 90.0\n"
        + asic("default", "192.0.2.1")
        + asic("own", "192.0.2.2", "poll_interval_s = 60.0\ntimeout_s = 2.0")
    )
    config = load_config(write(tmp_path, text))
    default, own = (config.asic_timing(a) for a in config.asics)
    assert (default.poll_interval_s, default.timeout_s) == (20.0, 4.0)
    assert (own.poll_interval_s, own.timeout_s) == (60.0, 2.0)
    assert default.backoff_max_s == own.backoff_max_s == 90.0


def test_automatic_freshness_thresholds() -> None:
    poller = PollerConfig()
    fast = poller.timing(poll_interval_s=5.0, timeout_s=1.0)
    assert fast.stale_after_s == 12.5
    assert fast.lost_after_s == 120.0  # never sooner than two minutes
    slow = poller.timing(poll_interval_s=60.0, timeout_s=1.0)
    assert slow.stale_after_s == 150.0
    assert slow.lost_after_s == 600.0


def test_explicit_freshness_thresholds_win_and_lost_never_precedes_stale() -> None:
    explicit = PollerConfig(stale_after_s=40.0, lost_after_s=90.0)
    timing = explicit.timing(poll_interval_s=30.0, timeout_s=5.0)
    assert (timing.stale_after_s, timing.lost_after_s) == (40.0, 90.0)
    # Only stale set, above the automatic lost threshold: lost is lifted to it.
    timing = PollerConfig(stale_after_s=500.0).timing(poll_interval_s=5.0, timeout_s=1.0)
    assert timing.lost_after_s >= timing.stale_after_s == 500.0


def test_state_dir_default_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    config = load_config(write(tmp_path, MINIMAL))
    assert config.site.state_dir == str(tmp_path / "xdg" / "hashpivot")
    assert config.site.state_path == tmp_path / "xdg" / "hashpivot"


def test_state_dir_default_ignores_relative_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(write(tmp_path, MINIMAL))
    assert config.site.state_path == tmp_path / "home" / ".local" / "state" / "hashpivot"


def test_state_dir_expands_home_and_resolves_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(write(tmp_path, MINIMAL + 'state_dir = "~/hp-state"\n'))
    assert config.site.state_path == tmp_path / "home" / "hp-state"
    config = load_config(write(tmp_path, MINIMAL + 'state_dir = "state"\n'))
    assert config.site.state_path == tmp_path.resolve() / "state"


def test_str_path_and_path_both_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    assert load_config(str(path)) == load_config(path)
    assert check_config(str(path)) == []


# ---- the shipped files -------------------------------------------------------------------------


def test_bundled_demo_path_points_at_the_repo_file() -> None:
    assert bundled_demo_path() == REPO / "config" / "demo.toml"
    assert bundled_demo_path().is_file()


def test_demo_config_loads_clean() -> None:
    assert check_config(bundled_demo_path()) == []
    config = load_config(bundled_demo_path())
    assert config.site.name == "demo"
    assert config.poller.asic_poll_interval_s == 5.0
    assert 35 <= len(config.asics) <= 45
    hosts = [a.host for a in config.asics]
    assert hosts == [f"127.0.2.{i}" for i in range(1, len(config.asics) + 1)]
    assert all(a.port == 4028 for a in config.asics)
    assert all(a.simulate is not None for a in config.asics)
    assert all(a.model for a in config.asics)
    personas = {a.simulate.persona for a in config.asics if a.simulate}
    assert personas == set(PERSONAS)
    stock = [a for a in config.asics if a.simulate and a.simulate.persona == "antminer_stock"]
    assert len(stock) > len(config.asics) / 2  # mostly stock Antminers, like real sites
    assert any(a.privileged for a in config.asics)
    faulty = [a for a in config.asics if a.simulate and a.simulate.faults]
    assert 2 <= len(faulty) <= 3


def test_site_example_loads_clean_and_uses_documentation_addresses() -> None:
    path = REPO / "config" / "site.example.toml"
    assert check_config(path) == []
    config = load_config(path)
    documentation = ipaddress.ip_network("192.0.2.0/24")
    for entry in config.asics:
        assert entry.simulate is None
        try:
            address = ipaddress.ip_address(entry.host)
        except ValueError:
            assert entry.host.endswith(".example")  # a hostname from a reserved domain
        else:
            assert address in documentation
    assert "[asics.simulate]" in path.read_text()  # the one commented-out example


# ---- problems: unknown keys, missing keys, types -------------------------------------------------


def test_unknown_key_suggests_the_closest_valid_key(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + "[poller]\nmax_concurency = 10\n"))
    assert problem.key_path == "poller.max_concurency"
    assert problem.line == 4
    assert problem.message == (
        "unknown key 'max_concurency' in [poller]; did you mean 'max_concurrency'?"
    )
    assert "max_concurrency" in problem.hint


def test_unknown_key_without_a_close_match_lists_the_valid_keys(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + "[host]\nzzz = 1\n"))
    assert problem.message == "unknown key 'zzz' in [host]"
    assert "enabled" in problem.hint and "interval_s" in problem.hint


def test_unknown_table_suggests_the_closest_table(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + "[pollr]\nmax_concurrency = 10\n"))
    assert problem.key_path == "pollr"
    assert problem.message == "unknown table [pollr]; did you mean [poller]?"
    problem = only(problems_of(tmp_path, MINIMAL + asic("a", "192.0.2.1").replace("asics", "asic")))
    assert "did you mean [[asics]]?" in problem.message


def test_unknown_nested_table_in_an_entry(tmp_path: Path) -> None:
    text = MINIMAL + asic("a", "127.0.2.1", 'model = "Antminer S21"\n[asics.simulation]\nseed = 1')
    problem = only(problems_of(tmp_path, text))
    assert problem.key_path == "asics[0].simulation"
    assert "did you mean [asics.simulate]?" in problem.message


def test_missing_site_table(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, "[poller]\nmax_concurrency = 8\n"))
    assert problem.key_path == "site"
    assert problem.message == "missing required table [site]"
    assert "name =" in problem.hint


def test_empty_file_is_missing_site(tmp_path: Path) -> None:
    assert only(problems_of(tmp_path, "")).key_path == "site"


def test_missing_required_keys_point_at_the_entry(tmp_path: Path) -> None:
    text = MINIMAL + "\n[[asics]]\nport = 4028\n"
    problems = problems_of(tmp_path, text)
    assert {p.key_path for p in problems} == {"asics[0].name", "asics[0].host"}
    assert all(p.line == 4 for p in problems)  # the [[asics]] header
    assert all(p.message.startswith("missing required key") for p in problems)


def test_wrong_type_matches_the_documented_format(tmp_path: Path) -> None:
    text = MINIMAL + "".join(asic(f"m{i}", f"192.0.2.{i}") for i in range(3))
    text += asic("m3", "192.0.2.3", 'port = "4028a"')
    path = write(tmp_path, text)
    problem = only(check_config(path))
    assert problem.key_path == "asics[3].port"
    line = path.read_text().splitlines().index('port = "4028a"') + 1
    assert problem.line == line
    assert format_problem(problem) == (
        f'{path}: asics[3] (line {line}): port: expected an integer 1..65535, got "4028a"'
        " — fix: write port = 4028"
    )


def test_number_written_as_a_string_suggests_removing_quotes(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + asic("a", "192.0.2.1", 'port = "4029"')))
    assert problem.hint == "write port = 4029 (a number, without quotes)"


@pytest.mark.parametrize(
    ("snippet", "key_path", "expected"),
    [
        ("[poller]\nmax_concurrency = 0", "poller.max_concurrency", "an integer 1..65536"),
        ("[poller]\nasic_poll_interval_s = -1", "poller.asic_poll_interval_s", "> 0"),
        ("[poller]\nasic_timeout_s = 5000", "poller.asic_timeout_s", "<= 600"),
        ("[poller]\nstale_after_s = -1", "poller.stale_after_s", ">= 0"),
        ("[host]\nenabled = 1", "host.enabled", "true or false"),
        ('[host]\ninterval_s = "5s"', "host.interval_s", "seconds"),
        ("[host]\ninterval_s = true", "host.interval_s", "seconds"),
    ],
)
def test_constraint_violations(tmp_path: Path, snippet: str, key_path: str, expected: str) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + snippet + "\n"))
    assert problem.key_path == key_path
    assert expected in problem.message
    assert "got" in problem.message


def test_port_out_of_range(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + asic("a", "192.0.2.1", "port = 70000")))
    assert problem.message == "expected an integer 1..65535, got 70000"


def test_boolean_as_string_gets_a_hint(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + asic("a", "192.0.2.1", 'privileged = "yes"')))
    assert problem.message == 'expected true or false, got "yes"'
    assert problem.hint == "write privileged = true (without quotes)"


def test_site_name_pattern_suggests_a_slug(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, '[site]\nname = "North Hall"\n'))
    assert problem.key_path == "site.name"
    assert 'got "North Hall"' in problem.message
    assert problem.hint == 'write name = "north-hall"'


def test_asic_name_pattern(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + asic("rack 1/a", "192.0.2.1")))
    assert problem.key_path == "asics[0].name"
    assert problem.hint == 'write name = "rack-1-a"'


def test_tags_as_a_string_suggests_an_array(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + asic("a", "192.0.2.1", 'tags = "row1"')))
    assert problem.message.startswith("expected an array of strings")
    assert problem.hint == 'write tags = ["row1"]'


def test_each_bad_array_item_is_reported(tmp_path: Path) -> None:
    text = MINIMAL + asic("a", "192.0.2.1", 'tags = ["ok", 3, ""]')
    problems = problems_of(tmp_path, text)
    assert [p.key_path for p in problems] == ["asics[0].tags[1]", "asics[0].tags[2]"]
    assert all(p.line == 6 for p in problems)


def test_password_env_must_be_a_variable_name(tmp_path: Path) -> None:
    text = MINIMAL + asic("a", "192.0.2.1", 'password_env = "hunter2!"')
    problem = only(problems_of(tmp_path, text))
    assert problem.key_path == "asics[0].password_env"
    assert "environment variable name" in problem.message


def test_asics_written_as_a_single_table(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + '[asics]\nname = "a"\nhost = "192.0.2.1"\n'))
    assert problem.key_path == "asics"
    assert "[[asics]]" in problem.message and "double brackets" in problem.hint


def test_table_written_as_a_value(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, "poller = 5\n" + MINIMAL))
    assert problem.key_path == "poller"
    assert problem.message == "expected a table [poller], got 5"


# ---- problems: rules across keys and entries ---------------------------------------------------


def test_duplicate_names(tmp_path: Path) -> None:
    text = MINIMAL + asic("a", "192.0.2.1") + asic("b", "192.0.2.2") + asic("a", "192.0.2.3")
    problem = only(problems_of(tmp_path, text))
    assert problem.key_path == "asics[2].name"
    assert problem.message == "duplicate name 'a': already used by asics[0] (line 3)"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ('host = "192.0.2.1"', 'host = "192.0.2.1"\nport = 4028'),
        ('host = "2001:db8::1"', 'host = "2001:DB8:0:0::1"'),
        ('host = "Miner.example"', 'host = "miner.example."'),
    ],
)
def test_duplicate_addresses(tmp_path: Path, first: str, second: str) -> None:
    text = MINIMAL + f'[[asics]]\nname = "a"\n{first}\n[[asics]]\nname = "b"\n{second}\n'
    problem = only(problems_of(tmp_path, text))
    assert problem.key_path == "asics[1].host"
    assert problem.message.startswith("duplicate address")
    assert "asics[0]" in problem.message


def test_same_host_different_ports_is_fine(tmp_path: Path) -> None:
    text = MINIMAL + asic("a", "192.0.2.1") + asic("b", "192.0.2.1", "port = 4029")
    assert problems_of(tmp_path, text) == []


def test_password_env_and_file_together(tmp_path: Path) -> None:
    text = MINIMAL + asic("a", "192.0.2.1", 'password_env = "X"\npassword_file = "/x"')
    problem = only(problems_of(tmp_path, text))
    assert problem.key_path == "asics[0].password_file"
    assert "both password_env and password_file" in problem.message


def test_unknown_persona_lists_the_valid_ones(tmp_path: Path) -> None:
    text = MINIMAL + asic(
        "a", "127.0.2.1", 'model = "Whatsminer M50"\n[asics.simulate]\npersona = "whatsminer_v2"'
    )
    problem = only(problems_of(tmp_path, text))
    assert problem.key_path == "asics[0].simulate.persona"
    for persona in PERSONAS:
        assert persona in problem.message
    assert problem.hint == 'write persona = "whatsminer"'


@pytest.mark.parametrize("host", ["192.0.2.5", "::1", "localhost", "10.0.0.1"])
def test_simulated_miner_must_be_on_ipv4_loopback(tmp_path: Path, host: str) -> None:
    text = MINIMAL + asic(
        "a", host, 'model = "Antminer S21"\n[asics.simulate]\npersona = "antminer_stock"'
    )
    problem = only(problems_of(tmp_path, text))
    assert problem.key_path == "asics[0].host"
    assert "127.0.0.0/8" in problem.message


def test_simulated_miner_needs_a_model(tmp_path: Path) -> None:
    text = MINIMAL + asic("a", "127.0.2.1", '[asics.simulate]\npersona = "luxos"')
    problem = only(problems_of(tmp_path, text))
    assert problem.key_path == "asics[0].simulate"
    assert "model" in problem.message


@pytest.mark.parametrize(
    ("host", "hint"),
    [
        ("192.0.2.1:4028", 'write host = "192.0.2.1" and port = 4028'),
        ("http://192.0.2.1/", 'write host = "192.0.2.1"'),
        ("[2001:db8::1]", 'write host = "2001:db8::1"'),
        ("192.0.2.300", "0..255"),
        ("bad_host!", "hostnames use"),
    ],
)
def test_invalid_hosts(tmp_path: Path, host: str, hint: str) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + asic("a", host)))
    assert problem.key_path == "asics[0].host"
    assert hint in problem.hint


def test_lost_after_must_exceed_stale_after(tmp_path: Path) -> None:
    text = MINIMAL + "[poller]\nstale_after_s = 100\nlost_after_s = 50\n"
    problem = only(problems_of(tmp_path, text))
    assert problem.key_path == "poller.lost_after_s"
    assert "greater than stale_after_s" in problem.message


# ---- every problem at once ---------------------------------------------------------------------


def test_every_problem_is_reported_in_one_run_in_file_order(tmp_path: Path) -> None:
    text = """
    [site]
    name = "Bad Name"

    [poller]
    max_concurency = 10
    asic_timeout_s = 0

    [[asics]]
    name = "a"
    host = "192.0.2.1"
    port = "x"
    tags = "row1"

    [[asics]]
    name = "a"
    host = "192.0.2.1"
    password_env = "A"
    password_file = "/a"

    [[asics]]
    host = "192.0.2.9"
    model = "Whatsminer M50"
    [asics.simulate]
    persona = "nope"
    """
    path = write(tmp_path, text)
    problems = check_config(path)
    assert [p.key_path for p in problems] == [
        "site.name",
        "poller.max_concurency",
        "poller.asic_timeout_s",
        "asics[0].port",
        "asics[0].tags",
        "asics[1].name",
        "asics[1].host",
        "asics[1].password_file",
        "asics[2].name",
        "asics[2].host",
        "asics[2].simulate.persona",
    ]
    lines = [p.line or 0 for p in problems]
    assert lines == sorted(lines)
    assert all(p.line is not None for p in problems)
    assert all(p.file == str(path) for p in problems)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert list(caught.value.problems) == problems
    assert str(caught.value).splitlines() == [format_problem(p) for p in problems]


@pytest.mark.parametrize(
    "text",
    [
        "site = 5",
        "site = []",
        "asics = [1, 2]",
        "asics = 'x'\n[site]\nname='a'",
        "[site]\nname = 1979-05-27T07:32:00Z",
        "[site]\nname = {a = 1}",
        "[site]\nname = 'a'\n[[asics]]\nname = 'a'\nhost = 'x'\nsimulate = 3",
        "[site]\nname = 'a'\n[[asics]]\nname = 'a'\nhost = ''\ntags = [[1], {}]",
        "[site]\nname = 'a'\n[[asics]]\nname = 'a'\nhost = '127.0.0.1'\n[asics.simulate]",
        "[site]\nname = 'a'\n[poller]\nstale_after_s = nan\nlost_after_s = inf",
        '[site]\nname = "a"\n"quoted.key" = 1',
    ],
)
def test_odd_documents_give_problems_not_exceptions(tmp_path: Path, text: str) -> None:
    problems = problems_of(tmp_path, text)
    assert problems
    for problem in problems:
        assert problem.message
        assert format_problem(problem)


# ---- file-level problems -----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    problem = only(check_config(tmp_path / "nope.toml"))
    assert problem.key_path == ""
    assert problem.message == "config file not found"
    assert str(bundled_demo_path()) in problem.hint
    with pytest.raises(ConfigError):
        load_config(tmp_path / "nope.toml")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    problem = only(check_config(tmp_path))
    assert problem.message.startswith("cannot read the config file")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[site]\nname = "caf\xe9"\n')
    problem = only(check_config(path))
    assert "UTF-8" in problem.message
    assert problem.line == 2


def test_toml_syntax_error_carries_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[poller]\nmax_concurrency = = 3\n")
    problem = only(check_config(path))
    assert problem.message.startswith("TOML syntax error: ")
    assert "(at line" not in problem.message
    assert (problem.line, problem.column) == (4, 19)
    assert format_problem(problem).startswith(f"{path} (line 4, column 19): TOML syntax error")


def test_toml_duplicate_table_is_a_syntax_problem(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + "[site]\n"))
    assert "twice" in problem.message
    assert problem.line == 3
    assert "[[asics]]" in problem.hint


def test_unquoted_string_gets_a_hint(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, "[site]\nname = demo\n"))
    assert problem.line == 2
    assert "quotes" in problem.hint


# ---- line numbers and formatting ---------------------------------------------------------------


def test_lines_point_at_the_nth_entry_and_its_nested_table(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + asic("a", "127.0.2.1", 'model = "Antminer S21"\n[asics.simulate]\npersona = "luxos"')
        + asic("b", "127.0.2.2", 'model = "Antminer S21"\n[asics.simulate]\npersona = "x"')
    )
    path = write(tmp_path, text)
    problem = only(check_config(path))
    lines = path.read_text().splitlines()
    assert problem.key_path == "asics[1].simulate.persona"
    assert lines[problem.line - 1] == 'persona = "x"'  # type: ignore[operator]


def test_dotted_keys_are_found(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, "# top\npoller.max_concurrency = 0\n" + MINIMAL))
    assert problem.key_path == "poller.max_concurrency"
    assert problem.line == 2


def test_format_problem_without_line_or_hint() -> None:
    problem = Problem(file="f.toml", key_path="site", message="missing required table [site]")
    assert format_problem(problem) == "f.toml: site: missing required table [site]"
    problem = Problem(file="f.toml", key_path="", message="config file not found", hint="x")
    assert format_problem(problem) == "f.toml: config file not found — fix: x"


def test_format_problem_with_quoted_key() -> None:
    problem = Problem(file="f", key_path='site."a.b"', message="m", line=3)
    assert format_problem(problem) == 'f: site (line 3): "a.b": m'


# ---- the schema documents itself ---------------------------------------------------------------


def test_every_config_field_has_an_attribute_docstring() -> None:
    source = (REPO / "console" / "config.py").read_text()
    tree = ast.parse(source)
    structs = {cls.__name__ for cls in _config_structs()}
    checked = 0
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or node.name not in structs:
            continue
        body = node.body
        for index, stmt in enumerate(body):
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                following = body[index + 1] if index + 1 < len(body) else None
                assert (
                    isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                ), f"{node.name}.{stmt.target.id} has no docstring"
                checked += 1
    assert checked >= 20


def _config_structs() -> list[type[msgspec.Struct]]:
    found: list[type[msgspec.Struct]] = []
    pending: list[type[msgspec.Struct]] = [SiteConfig]
    while pending:
        cls = pending.pop()
        found.append(cls)
        for info in msgspec.structs.fields(cls):
            for candidate in _struct_types(info.type):
                if candidate not in found and candidate not in pending:
                    pending.append(candidate)
    return found


def _struct_types(typ: object) -> list[type[msgspec.Struct]]:
    from typing import get_args

    if isinstance(typ, type) and issubclass(typ, msgspec.Struct):
        return [typ]
    return [s for arg in get_args(typ) for s in _struct_types(arg)]


def test_schema_walk_reaches_every_table() -> None:
    names = {cls.__name__ for cls in _config_structs()}
    assert {"SiteConfig", "SiteSection", "PollerConfig", "HostConfig", "AsicConfig"} <= names
    assert "AsicSimulate" in names
    assert AsicConfig.__struct_config__.forbid_unknown_fields
    assert AsicConfig.__struct_config__.frozen


def test_lines_are_right_for_every_entry_of_a_large_site(tmp_path: Path) -> None:
    text = MINIMAL + "".join(asic(f"m{i}", f"192.0.2.{i}", "modle = 'x'") for i in range(200))
    path = write(tmp_path, text)
    problems = check_config(path)
    lines = path.read_text().splitlines()
    assert [p.key_path for p in problems] == [f"asics[{i}].modle" for i in range(200)]
    assert all(lines[(p.line or 0) - 1] == "modle = 'x'" for p in problems)
    assert len({p.line for p in problems}) == 200


def test_unknown_array_of_tables_has_its_line(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + "\n[[fans]]\nindex = 0\n"))
    assert problem.key_path == "fans"
    assert problem.message == "unknown table [[fans]]"
    assert problem.line == 4


# ---- [market], [market.live], [power] ---------------------------------------------------------


def test_market_and_power_tables_decode(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            MINIMAL
            + """
            timezone = "America/Chicago"
            [market]
            as_of = 2026-01-12
            btc_price_usd = 91580
            network_difficulty = 146.47e12
            pool_scheme = "PPS+"
            ai_rate_usd_per_gpu_hour = { H100 = 2.1, "A100 80GB" = 1 }
            [market.gpu_mining_usd_per_mhs_day]
            kawpow = 0.013
            [market.live]
            enabled = true
            mempool_url = "http://127.0.0.1:8999/api"
            coingecko_api_key_env = "CG_KEY"
            [[market.scenarios]]
            name = "crash"
            btc_price_factor = 0.5
            [power]
            price_usd_per_kwh = 0.05
            [[power.tou]]
            name = "night"
            start = "22:00"
            end = "06:00"
            price_usd_per_kwh = 0.03
            months = [1, 2]
            """,
        )
    )
    assert config.site.timezone == "America/Chicago"
    assert config.site.zone is not None and str(config.site.zone) == "America/Chicago"
    m = config.market
    assert m.as_of is not None and m.as_of.isoformat() == "2026-01-12"
    assert m.btc_price_usd == 91580.0 and isinstance(m.btc_price_usd, float)
    assert m.pool_fee is None  # left out: the dated default applies (console.market)
    assert m.ai_rate_usd_per_gpu_hour == {"H100": 2.1, "A100 80GB": 1.0}
    assert m.gpu_mining_usd_per_mhs_day == {"kawpow": 0.013}
    assert m.live.enabled and m.live.price_interval_s == 60.0
    assert m.scenarios[0].name == "crash" and m.scenarios[0].difficulty_factor == 1.0
    window = config.power.tou[0]
    assert window.days == ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    assert window.months == (1, 2)


def test_market_defaults_leave_the_live_feed_off(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.market.live.enabled is False
    assert config.site.zone is None


@pytest.mark.parametrize(
    ("snippet", "key_path", "expected", "hint"),
    [
        ('timezone = "Europe/Olso"', "site.timezone", "unknown timezone", "Europe/Oslo"),
        ("[market]\npool_fee = 2.5", "market.pool_fee", "fraction", "0.025"),
        ('[market]\npool_scheme = "FPS"', "market.pool_scheme", "FPPS", "FPPS"),
        (
            '[market]\nai_rate_usd_per_gpu_hour = { H100 = "two" }',
            "market.ai_rate_usd_per_gpu_hour.H100",
            "rate in USD",
            "",
        ),
        (
            '[market.live]\nmempool_url = "http://mempool.space/api"',
            "market.live.mempool_url",
            "plain http",
            'mempool_url = "https://mempool.space/api"',
        ),
        (
            '[market.live]\ncoingecko_url = "ftp://x.example"',
            "market.live.coingecko_url",
            "http(s) URL",
            "",
        ),
        ("[market.live]\nprice_interval_s = 5", "market.live.price_interval_s", "30..86400", "60"),
        ("[power]\nprice_usd_per_kwh = 45", "power.price_usd_per_kwh", "USD per kWh", "0.045"),
        ("[power]\noverhead_gpu = 0.8", "power.overhead_gpu", "factor 1..3", ""),
        (
            '[[power.tou]]\nname = "x"\nstart = "14:00"\nend = "14:00"\nprice_usd_per_kwh = 0.1',
            "power.tou[0].end",
            "empty",
            "",
        ),
        (
            '[[power.tou]]\nname = "x"\nstart = "2pm"\nend = "19:00"\nprice_usd_per_kwh = 0.1',
            "power.tou[0].start",
            "HH:MM",
            "",
        ),
        (
            '[[power.tou]]\nname = "x"\nstart = "14:00"\nend = "19:00"\nprice_usd_per_kwh = 0.1\n'
            'days = ["mon", "fr"]',
            "power.tou[0].days[1]",
            "fri",
            "",
        ),
    ],
)
def test_market_and_power_problems(
    tmp_path: Path, snippet: str, key_path: str, expected: str, hint: str
) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + snippet + "\n"))
    assert problem.key_path == key_path, format_problem(problem)
    assert expected in problem.message, format_problem(problem)
    assert hint in problem.hint, format_problem(problem)
    assert problem.line is not None


def test_site_example_commented_market_and_power_examples_are_valid(tmp_path: Path) -> None:
    """Uncommenting the example keys of [market], [market.live] and [power] gives a file
    that still loads: the documentation cannot drift from the schema."""
    text = (REPO / "config" / "site.example.toml").read_text()
    start, end = text.index("[market]\n"), text.index("# ---- [[asics]]")
    lines = []
    for line in text[start:end].splitlines():
        stripped = line.removeprefix("# ")
        is_example = stripped != line and (
            stripped.startswith(("[", "name", "start", "end", "days", "months"))
            or (" = " in stripped and stripped.split(" = ")[0].isidentifier())
        )
        lines.append(stripped if is_example else line)
    config = load_config(write(tmp_path, MINIMAL + "\n".join(lines)))
    assert config.market.gpu_pool_fee == 0.01
    assert config.market.live.coingecko_api_key_env == "COINGECKO_DEMO_KEY"
    assert [w.name for w in config.power.tou] == ["summer-peak", "night"]
    assert config.market.scenarios[0].name == "btc-20pct"

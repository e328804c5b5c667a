"""The program's settings: flags > env > TOML > defaults, bad values refused in one line, secrets kept out of help."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from alerts.cli import main_parser, run_cli
from alerts.config import settings_from

ENV_NONE: dict[str, str] = {}


def settings(args: list[str], env: dict[str, str] | None = None):
    return settings_from(main_parser().parse_args(args), env or ENV_NONE)


def rule(s, name: str):
    return next(r for r in s.rules if r.name == name)


def usage_error(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        run_cli(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_defaults_follow_the_report_s_colours():
    s = settings([])
    staleness = rule(s, "batch_age")
    # amber after 1 min: pending; red after 5: firing
    assert (staleness.threshold, staleness.for_) == (60, timedelta(minutes=4))
    assert (rule(s, "window_age").threshold, rule(s, "window_age").for_) == (120, timedelta(minutes=8))
    assert all(r.enabled for r in s.rules) and s.webhook is None and s.email is None


def test_flags_win_over_env_which_wins_over_the_toml_file(tmp_path: Path):
    # Given the same thresholds in a TOML file, the environment and flags
    config = tmp_path / "alerts.toml"
    config.write_text('interval = "10s"\n[rules.batch_age]\nthreshold = "2m"\nfor = "1m"\n'
                      '[rules.invalid_rate]\nthreshold = 0.2\nwindow = "5m"\nenabled = false\n')
    env = {"CLICKPULSE_ALERT_BATCH_AGE_THRESHOLD": "90s", "CLICKPULSE_ALERTS_INTERVAL": "20s"}
    s = settings(["--config", str(config), "--batch-age-threshold", "45s"], env)
    # Then each comes from the strongest source that sets it
    assert rule(s, "batch_age").threshold == 45  # flag
    assert rule(s, "batch_age").for_ == timedelta(minutes=1)  # TOML
    assert s.interval == timedelta(seconds=20)  # env
    invalid = rule(s, "invalid_rate")
    assert (invalid.threshold, invalid.window, invalid.enabled) == (0.2, timedelta(minutes=5), False)
    # And a threshold set without a clear level keeps the default hysteresis (4% for 5%: 80%)
    assert invalid.clear == pytest.approx(0.16)


def test_ratios_take_percent_and_rules_can_be_chosen():
    s = settings(["--invalid-rate-threshold", "12.5%", "--rules", "invalid_rate,lag_records"])
    assert rule(s, "invalid_rate").threshold == 0.125
    assert [r.name for r in s.enabled_rules] == ["invalid_rate", "lag_records"]


@pytest.mark.parametrize(("args", "says"), [
    (["--batch-age-threshold", "soon"], "--batch-age-threshold: not a duration: 'soon'"),
    (["--invalid-rate-threshold", "150%"], "--invalid-rate-threshold: not a ratio between 0 and 1"),
    (["--rules", "batch_age,coffee"], "unknown rule(s) coffee"),
    (["--batch-age-threshold", "1m", "--batch-age-clear", "2m"], "clear (120) must not be above threshold (60)"),
    (["--webhook-url", "ftp://example.test/x"], "webhook URL must be an http:// or https:// URL"),
    (["--smtp-host", "mail.example.test"], "email sender must be an address"),
])
def test_a_bad_setting_exits_2_with_one_line(capsys, monkeypatch, args, says):
    for name in ("CLICKPULSE_MONGO_URI", "CLICKPULSE_SMTP_PASSWORD", "CLICKPULSE_SMTP_USER"):
        monkeypatch.delenv(name, raising=False)
    err = usage_error(capsys, args)
    assert err.startswith("python -m alerts: error: ") and says in err


def test_an_unknown_key_in_the_toml_file_is_refused(capsys, tmp_path: Path):
    config = tmp_path / "alerts.toml"
    config.write_text('[rules.batch_age]\nthreshhold = "2m"\n')
    assert "unknown key(s) rules.batch_age.threshhold" in usage_error(capsys, ["--config", str(config)])


def test_credentials_are_never_sent_without_starttls(capsys, monkeypatch):
    monkeypatch.setenv("CLICKPULSE_SMTP_USER", "alerts")
    monkeypatch.setenv("CLICKPULSE_SMTP_PASSWORD", "pw-123")
    err = usage_error(capsys, ["--smtp-host", "mail.example.test", "--smtp-from", "a@example.test",
                               "--smtp-to", "b@example.test", "--no-smtp-starttls"])
    assert "only sent over STARTTLS" in err and "pw-123" not in err


def test_help_shows_no_secret_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("CLICKPULSE_MONGO_URI", "mongodb://u:mongo-pw@db:27017/")
    monkeypatch.setenv("CLICKPULSE_ALERTS_WEBHOOK_URL", "https://hooks.example.test/services/T0KEN")
    monkeypatch.setenv("CLICKPULSE_SMTP_PASSWORD", "smtp-pw")
    with pytest.raises(SystemExit) as exit_:
        run_cli(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--batch-age-threshold" in out and "--once" in out
    assert not {"mongo-pw", "T0KEN", "smtp-pw"} & set(out.replace("/", " ").replace("@", " ").replace(":", " ").split())


def test_settings_repr_shows_no_secret():
    s = settings(["--webhook-url", "https://hooks.example.test/services/T0KEN"],
                 {"CLICKPULSE_MONGO_URI": "mongodb://u:mongo-pw@db:27017/"})
    assert "T0KEN" not in repr(s) and "mongo-pw" not in repr(s)

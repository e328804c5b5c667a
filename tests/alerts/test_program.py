"""The alerts program as users run it (`python -m alerts --once`), on real MongoDB, HTTP and SMTP servers."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from storage import contract as c
from tests.alerts.jobrecords import record_batch, run_alerts, start_alerts
from tests.alerts.receivers import HttpReceiver, SmtpReceiver
from tests.job.jobrun import poll

pytestmark = pytest.mark.integration

STALE = ["--rules", "batch_age", "--batch-age-threshold", "60s", "--batch-age-for", "0s"]


def base_args(mongo_uri: str, db, kafka: str) -> list[str]:
    return ["--mongo-uri", mongo_uri, "--database", db.name, "--bootstrap-servers", kafka]


def plain_email(smtp: SmtpReceiver) -> list[str]:
    return ["--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.port), "--no-smtp-starttls",
            "--smtp-from", "clickpulse@example.test", "--smtp-to", "oncall@example.test,data@example.test"]


def test_a_firing_alert_notifies_once_while_it_fires_and_again_when_it_resolves(mongo_uri, mongo_db, kafka_bootstrap,
                                                                               tmp_path):
    # Given a job whose newest batch ran 10 minutes ago, and a webhook and a mailbox
    record_batch(mongo_db, datetime.now(UTC) - timedelta(minutes=10))
    log = tmp_path / "alerts.log"
    with HttpReceiver() as hook, SmtpReceiver() as smtp:
        args = [*base_args(mongo_uri, mongo_db, kafka_bootstrap), *STALE, "--once", "--webhook-url", hook.url(),
                *plain_email(smtp)]
        # When the program evaluates three rounds (as from cron) while the batch stays old
        for _ in range(3):
            assert run_alerts(args, log).returncode == 0, log.read_text()
        # Then the alert fired once: one webhook post and one email, not one per round
        assert [b["alert"]["kind"] for b in hook.bodies] == ["firing"]
        assert len(smtp.messages) == 1
        assert smtp.messages[0]["Subject"] == "[FIRING] clickpulse batch_age: Staleness: newest batch"
        assert smtp.messages[0]["To"] == "oncall@example.test, data@example.test"

        # When the job writes a batch again and the next round runs
        record_batch(mongo_db, datetime.now(UTC), batch=2)
        assert run_alerts(args, log).returncode == 0, log.read_text()
        # Then the resolution is notified on both channels
        assert [b["alert"]["kind"] for b in hook.bodies] == ["firing", "resolved"]
        assert [m["Subject"] for m in smtp.messages][-1] == "[RESOLVED] clickpulse batch_age: Staleness: newest batch"

    # And the alerts collection kept the episode's transitions and every delivery
    [episode] = list(mongo_db[c.ALERTS].find())
    assert episode[c.STATE] == "resolved" and episode[c.CHECKS] == 4
    assert [t[c.STATE] for t in episode[c.TRANSITIONS]] == ["pending", "firing", "resolved"]
    assert sorted((d[c.CHANNEL], d[c.KIND], d[c.DELIVERED]) for d in episode[c.DELIVERIES]) == [
        ("email", "firing", True), ("email", "resolved", True), ("log", "firing", True), ("log", "resolved", True),
        ("webhook", "firing", True), ("webhook", "resolved", True)]
    # And the webhook body is one Slack-compatible receivers accept: a top-level text
    text = hook.bodies[0]["text"]
    assert text.startswith("[FIRING] clickpulse batch_age: Staleness: newest batch — the newest batch ran 10 min")


def test_a_failing_webhook_does_not_hold_up_email(mongo_uri, mongo_db, kafka_bootstrap, tmp_path):
    # Given a stale job, a webhook that hangs and then answers 500, and a working mailbox
    record_batch(mongo_db, datetime.now(UTC) - timedelta(minutes=10))
    log = tmp_path / "alerts.log"
    with HttpReceiver(status=500) as hook, SmtpReceiver() as smtp:
        hook.hold()
        args = [*base_args(mongo_uri, mongo_db, kafka_bootstrap), *STALE, "--once", "--webhook-url", hook.url(),
                "--webhook-timeout", "30s", "--delivery-attempts", "2", "--delivery-backoff", "0.1s",
                *plain_email(smtp)]
        proc = start_alerts(args, log)
        try:
            # When the alert fires: the email arrives while the webhook still holds its first request
            poll(lambda: hook.waiting == 1, timeout=60, what="the webhook to receive the alert")
            poll(lambda: len(smtp.messages) == 1, timeout=60, what=f"the email while the webhook hangs (log: {log})")
            assert hook.waiting == 1
            hook.release()
            assert proc.wait(timeout=60) == 0
        finally:
            hook.release()
            if proc.poll() is None:
                proc.kill()
    # Then the webhook was retried, its failure reported in the log and recorded with the alert
    assert len(hook.bodies) == 2
    lines = log.read_text()
    assert "webhook http://127.0.0.1:" in lines and "gave up on firing batch_age after 2 attempts: HTTP 500" in lines
    [episode] = list(mongo_db[c.ALERTS].find())
    outcome = {d[c.CHANNEL]: (d[c.DELIVERED], d[c.ATTEMPTS]) for d in episode[c.DELIVERIES]}
    assert outcome == {"log": (True, 1), "email": (True, 1), "webhook": (False, 2)}


def test_email_goes_over_starttls_with_credentials_that_never_reach_a_log_line(mongo_uri, mongo_db, kafka_bootstrap,
                                                                              tmp_path):
    # Given a mail server that requires STARTTLS and a login, and a webhook whose path is its secret
    record_batch(mongo_db, datetime.now(UTC) - timedelta(minutes=10))
    log = tmp_path / "alerts.log"
    password, token = "s3cr3t-Pa55w0rd", "T0KEN-in-the-path"
    env = {**os.environ, "CLICKPULSE_SMTP_USER": "alerts", "CLICKPULSE_SMTP_PASSWORD": password}
    with SmtpReceiver(tls_dir=tmp_path, user="alerts", password=password) as smtp, HttpReceiver(status=404) as hook:
        args = [*base_args(mongo_uri, mongo_db, kafka_bootstrap), *STALE, "--once", "--log-level", "DEBUG",
                "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.port), "--smtp-ca-file", str(smtp.ca_file),
                "--smtp-from", "clickpulse@example.test", "--smtp-to", "oncall@example.test",
                "--webhook-url", hook.url(f"/services/{token}"), "--delivery-attempts", "1"]
        # When the alert fires
        assert run_alerts(args, log, env=env).returncode == 0, log.read_text()
        # Then the email was sent after logging in over TLS
        assert smtp.inbox.logins == ["alerts"] and len(smtp.messages) == 1
        # And when the password is wrong (the resolution goes out with it), the failure is reported
        env["CLICKPULSE_SMTP_PASSWORD"] = "wrong-" + password
        record_batch(mongo_db, datetime.now(UTC), batch=2)
        assert run_alerts(args, log, env=env).returncode == 0
        assert len(smtp.messages) == 1
    # And neither the password nor the webhook's secret path ever reached the log (debug lines included)
    lines = log.read_text()
    assert "gave up on resolved batch_age after 1 attempt: SMTP server refused the credentials" in lines
    assert password not in lines and token not in lines
    assert "webhook http://127.0.0.1:" in lines


def test_json_logs_are_one_object_per_line_with_the_alert_s_facts(mongo_uri, mongo_db, kafka_bootstrap, tmp_path):
    record_batch(mongo_db, datetime.now(UTC) - timedelta(minutes=10))
    log = tmp_path / "alerts.log"
    args = [*base_args(mongo_uri, mongo_db, kafka_bootstrap), *STALE, "--once", "--log-format", "json"]
    assert run_alerts(args, log).returncode == 0, log.read_text()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    [fired] = [doc for doc in lines if doc.get("alert")]
    assert fired["level"] == "WARNING" and fired["logger"] == "clickpulse.alerts.notify"
    assert fired["alert"]["rule"] == "batch_age" and fired["alert"]["kind"] == "firing"
    assert fired["alert"]["value"] >= 600


def test_an_unreachable_mongodb_fails_a_once_round_with_one_line(tmp_path):
    log = tmp_path / "alerts.log"
    result = run_alerts(["--once", "--mongo-uri", "mongodb://alerts:hunter22@127.0.0.1:9/", "--mongo-timeout", "0.5s",
                         "--bootstrap-servers", "127.0.0.1:9"], log)
    assert result.returncode == 1
    lines = log.read_text()
    assert "cannot read MongoDB at mongodb://alerts:***@127.0.0.1:9/" in lines and "hunter22" not in lines

"""Every command, given bad options or arguments (or no broker), answers with a specific
message and a non-zero exit code, never a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from flowmail.cli import main

NO_BROKER = {"FLOWMAIL_KAFKA_BOOTSTRAP": "127.0.0.1:1", "FLOWMAIL_STARTUP_TIMEOUT_S": "2"}

CASES = [
    (["publish"], "Missing argument 'EVENT_TYPE'"),
    (["publish", "order.placed", "/nonexistent.json"], "No such file or directory"),
    (["publish", "order.placed", "/etc/hostname"], "not valid JSON"),
    (["worker", "--priorities", "urgent"], "'urgent' is not a valid Priority"),
    (["worker", "--agents", "bogus"], "unknown agent(s) ['bogus']"),
    (["worker", "--agents", ","], "unknown agent(s)"),
    (["worker", "--provider", "carrierpigeon"], "unknown provider 'carrierpigeon'"),
    (["worker", "--loglevel", "loud"], "'loud' is not one of"),
    (["worker", "--new-group-starts-at", "middle"], "'middle' is not one of"),
    (["demo", "--count", "-3"], "-3 is not in the range"),
    (["demo", "--count", "abc"], "'abc' is not a valid integer"),
    (["bench", "--n", "0"], "--n must be >= 8"),
    (["bench", "--workers", "-1"], "--workers >= 0, --repeat >= 1"),
    (["bench", "--warm-runs", "-1"], "--warm-runs >= 0"),
    (["bench", "--warm-runs", "few"], "'few' is not a valid integer"),
    (["bench", "--provider", "pigeon"], "'pigeon' is not one of"),
    (["bench", "--smtp-port", "1"], "--smtp-host and --smtp-port go together"),
    (["dlq", "inspect", "--limit", "-1"], "-1 is not in the range x>=1"),
    (["dlq", "inspect", "--start", "-5"], "-5 is not in the range x>=0"),
    (["dlq", "inspect"], "FLOWMAIL_KAFKA_BOOTSTRAP=127.0.0.1:1 did not answer"),
    (["dlq", "replay"], "choose records with --offset and/or --reason"),
    (["dlq", "replay", "--offset", "x"], "'x' is not a valid integer"),
    (["dlq", "replay", "--offset", "5"], "FLOWMAIL_KAFKA_BOOTSTRAP=127.0.0.1:1 did not answer"),
    (["preview", "newsletter"], "unknown email type 'newsletter'"),
    (["preview", "welcome", "--locale", ""], "locale '' is not one of"),
    (["preview", "welcome", "--locale", "klingon"], "locale 'klingon' is not one of"),
    (["preview", "welcome", "--data", "/etc/hostname"], "--data /etc/hostname: not valid JSON"),
    (["preview", "welcome", "--out", "/proc/no/such/dir"], "cannot write there"),
    (["suppress"], "Missing argument 'ADDRESS'"),
    (["suppress", "a@b.example", "--reason", "x"], "'x' is not one of"),
    (["topics", "apply"], "Kafka still not ready after 2s"),
    (["stack", "frobnicate"], "No such command 'frobnicate'"),
    (["settings", "--x"], "No such option: --x"),
    (["nosuchcommand"], "No such command 'nosuchcommand'"),
]


@pytest.mark.parametrize(("argv", "message"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_a_specific_error(argv, message, monkeypatch):
    for name, value in NO_BROKER.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, argv, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"traceback: {result.exception!r}"
    assert result.exit_code != 0
    assert message in result.output, result.output

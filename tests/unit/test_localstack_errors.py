"""The local stack fails with messages a new user can act on (no services needed)."""

import socket
from pathlib import Path

import pytest

from flowmail.localstack.catcher import CatcherService
from flowmail.localstack.jvm import java_home, maven_fetch
from flowmail.localstack.procs import Managed, StackError, stop

POM = Path(__file__).resolve().parents[2] / "deploy" / "local" / "kafka-pom.xml"


def test_port_taken_by_a_stranger_is_reported(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        catcher = CatcherService(tmp_path, tmp_path / "outbox", port)
        with pytest.raises(StackError, match=rf"port\(s\) {port} .* already in use"):
            catcher.start()
    assert not (tmp_path / "mailcatcher.pid").exists()


def test_missing_jdk_is_reported(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match=r"no JDK found.*FLOWMAIL_JAVA_HOME"):
        java_home(str(tmp_path / "no-such-jdk"))


def test_missing_maven_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match=r"Maven \(mvn\) not found"):
        maven_fetch(POM, tmp_path / "lib", tmp_path / "m2", Path("/usr"), tmp_path / "log")


def test_stop_never_kills_a_process_we_did_not_start(tmp_path):
    pidfile = tmp_path / "x.pid"
    pidfile.write_text("1")  # pid 1 is alive but is not ours: marker does not match
    proc = Managed("x", pidfile, "flowmail-marker-that-pid-1-lacks", tmp_path / "x.log")
    assert stop(proc) is False
    assert not pidfile.exists()


def test_start_failure_shows_the_log_tail(tmp_path):
    from flowmail.localstack.procs import spawn, wait_until
    proc = Managed("crasher", tmp_path / "c.pid", "-c", tmp_path / "c.log")
    spawn(proc, ["python3", "-c", "import sys; print('boom: bad config'); sys.exit(3)"])
    with pytest.raises(StackError, match=r"(?s)crasher exited during start-up.*boom: bad config"):
        wait_until(proc, lambda: False, timeout_s=30)


def test_kraft_cluster_ids_never_start_with_a_dash():
    """The storage tool read a leading '-' as an option: a fresh broker failed 1 start in 64."""
    from flowmail.localstack.kafka import _cluster_id
    ids = [_cluster_id() for _ in range(5000)]
    assert not any(i.startswith("-") for i in ids) and all(len(i) == 22 for i in ids)

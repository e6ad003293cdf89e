"""Where the benchmark's smtp-sink dumps, and how a dump directory is emptied."""

from pathlib import Path

from bench.sinks import SmtpSink, dump_root


def test_dump_root_is_a_private_directory_in_memory_or_the_fallback(tmp_path):
    fallback = tmp_path / "sink"
    chosen = dump_root(fallback, expected_bytes=1024)
    try:
        if Path("/dev/shm").is_dir():
            assert chosen.parent == Path("/dev/shm") and chosen.name.startswith("flowmail-sink-")
            assert chosen.stat().st_mode & 0o077 == 0  # nobody else's to read
        else:
            assert chosen == fallback
    finally:
        if chosen != fallback:
            chosen.rmdir()
    # far more than any machine's memory: the disk
    assert dump_root(fallback, expected_bytes=1 << 60) == fallback


def test_reset_empties_the_dump_directory_and_keeps_it(tmp_path):
    sink = SmtpSink(tmp_path / "dump")
    sink.reset()
    (sink.dump_dir / "120000.abc").write_bytes(b"X-Flowmail-Idempotency-Key: " + b"a" * 40)
    (sink.dump_dir / "nested").mkdir()
    assert sink.message_bytes() > 0
    sink.reset()
    assert sink.dump_dir.is_dir() and not list(sink.dump_dir.iterdir())
    assert sink.message_bytes() == 0


def test_operator_mail_is_neither_the_workloads_nor_foreign(tmp_path):
    """A daily report sent when the day turns during a run is flowmail's own mail."""
    sink = SmtpSink(tmp_path / "dump")
    sink.reset()
    head = "X-Flowmail-Idempotency-Key: {}\r\nX-Flowmail-Email-Type: {}\r\n\r\n"
    (sink.dump_dir / "1.a").write_text(head.format("a" * 40, "daily_report"))
    (sink.dump_dir / "2.b").write_text(head.format("b" * 40, "order_confirmation"))
    (sink.dump_dir / "3.c").write_text("X-Flowmail-Email-Type: welcome\r\n")  # still arriving
    assert sink.keys() == ["b" * 40]


def test_fresh_keys_are_each_dump_once_until_a_reset(tmp_path):
    """What the benchmark's wait for the last email reads (bench/e2e._wait_for_sink)."""
    sink = SmtpSink(tmp_path / "dump")
    sink.reset()
    head = "X-Flowmail-Idempotency-Key: {}\r\nX-Flowmail-Email-Type: welcome\r\n\r\n"
    (sink.dump_dir / "1.a").write_text(head.format("a" * 40))
    (sink.dump_dir / "2.b").write_text("X-Flowmail-Email-Type: welcome\r\n")  # still arriving
    assert sink.fresh_keys() == ["a" * 40]
    assert sink.fresh_keys() == []
    (sink.dump_dir / "2.b").write_text(head.format("b" * 40))  # now complete
    (sink.dump_dir / "3.c").write_text(head.format("c" * 40))
    assert sorted(sink.fresh_keys()) == ["b" * 40, "c" * 40]
    assert sorted(sink.keys()) == ["a" * 40, "b" * 40, "c" * 40]  # keys() is still all
    sink.reset()
    (sink.dump_dir / "1.a").write_text(head.format("d" * 40))  # a name seen before reset
    assert sink.fresh_keys() == ["d" * 40]

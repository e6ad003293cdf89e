"""bench/procstats.JitThreads: the CPU a JVM's compiler threads spent in a window, read from
a /proc laid out as the kernel does (HotSpot starts and ends compiler threads as it goes)."""

from pathlib import Path

from bench.procstats import CLOCK_TICKS, JitThreads


def _thread(proc: Path, tid: int, name: str, ticks: int) -> None:
    task = proc / "42" / "task" / str(tid)
    task.mkdir(parents=True, exist_ok=True)
    (task / "comm").write_text(name + "\n")
    # comm in the stat line may hold spaces and parentheses; utime and stime are fields 14, 15
    fields = ["S", *["0"] * 10, str(ticks), "0", *["0"] * 30]
    (task / "stat").write_text(f"{tid} ({name}) " + " ".join(fields) + "\n")


def test_counts_compiler_threads_only_from_the_first_sample(tmp_path):
    _thread(tmp_path, 1, "java", 500)
    _thread(tmp_path, 2, "C2 CompilerThre", 300)
    _thread(tmp_path, 3, "C1 CompilerThre", 100)
    jit = JitThreads(42, proc=tmp_path)
    jit.sample()
    _thread(tmp_path, 1, "java", 900)
    _thread(tmp_path, 2, "C2 CompilerThre", 300 + 2 * CLOCK_TICKS)
    _thread(tmp_path, 3, "C1 CompilerThre", 100 + CLOCK_TICKS // 2)
    jit.sample()
    assert jit.cpu_s() == 2.5


def test_a_thread_started_in_the_window_counts_whole_and_an_ended_one_keeps_its_last(tmp_path):
    _thread(tmp_path, 2, "C2 CompilerThre", 300)
    jit = JitThreads(42, proc=tmp_path)
    jit.sample()
    _thread(tmp_path, 2, "C2 CompilerThre", 300 + CLOCK_TICKS)
    _thread(tmp_path, 7, "C2 CompilerThre", CLOCK_TICKS)  # born after the start
    jit.sample()
    for leftover in (tmp_path / "42" / "task" / "2").iterdir():  # thread 2 ends
        leftover.unlink()
    (tmp_path / "42" / "task" / "2").rmdir()
    jit.sample()
    assert jit.cpu_s() == 2.0


def test_a_process_that_is_gone_reads_as_no_compiling(tmp_path):
    jit = JitThreads(42, proc=tmp_path)
    jit.sample()
    assert jit.cpu_s() == 0.0

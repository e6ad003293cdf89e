"""`flowmail worker`'s processes: one per core and the critical lane, niced as configured."""

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from core.settings import Settings, SettingsError, load_settings
from flowmail.supervisor import Child, child_argv, child_setup, layout, set_autogroup_nice


def test_the_default_layout_is_a_worker_per_core_and_the_critical_lane():
    settings = replace(Settings(), web_port=6066)
    assert layout(settings, 2) == [Child("bulk", 10, 6066), Child("bulk", 10, 6067),
                                   Child("critical", 0, 6068)]
    assert "--lane=critical" in child_argv(layout(settings, 1)[-1], ["--provider", "smtp"])


def test_without_the_critical_lane_every_process_runs_everything():
    settings = load_settings({"FLOWMAIL_CRITICAL_LANE": "false", "FLOWMAIL_WEB_PORT": "7000"})
    assert layout(settings, 3) == [Child("all", 0, 7000 + i) for i in range(3)]


@pytest.mark.parametrize("raw", ["maybe", "2", "on"])
def test_a_yes_no_setting_refuses_anything_else(raw):
    with pytest.raises(SettingsError, match="FLOWMAIL_CRITICAL_LANE"):
        load_settings({"FLOWMAIL_CRITICAL_LANE": raw})


def _autogroup_nice(pid: int | str) -> int | None:
    """None where the process is in the kernel's default group, whose file reads empty (as in
    a CI container whose session was never set up by a login)."""
    words = Path(f"/proc/{pid}/autogroup").read_text().split()
    return int(words[-1]) if words else None


HAS_AUTOGROUP = Path("/proc/self/autogroup").exists()


def test_a_bulk_child_in_its_own_session_gives_its_autogroup_the_niceness():
    """Autogroups share CPU between sessions before nice counts: a bulk process alone in its
    session must lower the session's weight, not only its own, or it keeps an equal share
    against the critical lane."""
    child = subprocess.Popen(["sleep", "5"], start_new_session=True,
                             preexec_fn=lambda: child_setup(7))
    try:
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == 7
        if HAS_AUTOGROUP:  # the kernel this runs on decides; both answers are checked
            assert _autogroup_nice(child.pid) == 7
        else:
            assert set_autogroup_nice(7) is False
    finally:
        child.kill()
        child.wait()


def test_a_child_sharing_our_session_never_renices_it():
    before = _autogroup_nice("self") if HAS_AUTOGROUP else None
    child = subprocess.Popen(["sleep", "5"], preexec_fn=lambda: child_setup(9))
    try:
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == 9
        if HAS_AUTOGROUP:
            assert _autogroup_nice(child.pid) == before == _autogroup_nice("self")
    finally:
        child.kill()
        child.wait()


def test_the_autogroup_write_is_best_effort(tmp_path):
    assert set_autogroup_nice(3, str(tmp_path / "missing" / "autogroup")) is False
    target = tmp_path / "autogroup"
    assert set_autogroup_nice(3, str(target)) is True
    assert target.read_text() == "3"

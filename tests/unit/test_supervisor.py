"""`flowmail worker`'s processes: one per core and the critical lane, niced as configured."""

from dataclasses import replace

import pytest

from flowmail.settings import Settings, SettingsError, load_settings
from flowmail.supervisor import Child, child_argv, layout


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

from pathlib import Path

import pytest

from core.settings import SettingsError, describe, load_settings


def test_defaults_target_the_local_stack():
    settings = load_settings({})
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.opensearch_url == "http://127.0.0.1:9200"
    assert settings.smtp_port == 1025


def test_environment_overrides_and_types():
    settings = load_settings({"FLOWMAIL_SMTP_PORT": "2525", "FLOWMAIL_HOME": "/tmp/fm",
                              "FLOWMAIL_SINK_BATCH_SECONDS": "0.25"})
    assert settings.smtp_port == 2525
    assert settings.home == Path("/tmp/fm")
    assert settings.sink_batch_seconds == 0.25


def test_bad_values_name_the_variable():
    with pytest.raises(SettingsError, match="FLOWMAIL_SMTP_PORT"):
        load_settings({"FLOWMAIL_SMTP_PORT": "smtp"})
    with pytest.raises(SettingsError, match="FLOWMAIL_SMTP_TLS"):
        load_settings({"FLOWMAIL_SMTP_TLS": "maybe"})
    with pytest.raises(SettingsError, match="FLOWMAIL_EVENT_LOOP"):
        load_settings({"FLOWMAIL_EVENT_LOOP": "trio"})


def test_secrets_are_not_shown():
    settings = load_settings({"FLOWMAIL_SMTP_PASSWORD": "hunter2",
                              "FLOWMAIL_PSEUDONYM_SECRET": "pepper"})
    assert "hunter2" not in repr(settings) and "pepper" not in repr(settings)
    assert all("hunter2" not in row[1] for row in describe())


def test_empty_text_value_is_a_value_but_empty_number_is_unset():
    settings = load_settings({"FLOWMAIL_PDF_ATTACHMENTS": "", "FLOWMAIL_SMTP_PORT": ""})
    assert settings.pdf_attachments == "" and settings.smtp_port == 1025

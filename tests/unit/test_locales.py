import pytest

from processors.locales import SUPPORTED, negotiate, normalize


@pytest.mark.parametrize(("tag", "expected"), [
    ("de-DE", "de"), ("de", "de"), ("DE_at", "de"), ("pt-BR", "pt_BR"), ("pt", "pt_BR"),
    ("pt_PT", "pt_BR"), ("zh-Hans-CN", "zh_Hans"), ("zh_CN", "zh_Hans"), ("ja_JP.UTF-8", "ja"),
    ("en-US", "en"), ("ko-KR", None), ("", None), (None, None), ("  ", None),
])
def test_normalize(tag, expected):
    assert normalize(tag) == expected


def test_explicit_preference_wins_over_country():
    assert negotiate("fr-CA", "DE") == "fr"


def test_country_is_used_when_no_preference():
    assert negotiate(None, "BR") == "pt_BR"
    assert negotiate("", "jp") == "ja"


def test_unsupported_preference_falls_back_to_country_then_default():
    assert negotiate("ko", "IT") == "it"
    assert negotiate("ko", "KR") == "en"
    assert negotiate(None, None, default="xx") == "en"


def test_only_supported_locales_come_out():
    for pref in ["sv", "de", "xx-YY", None, "zh-Hant"]:
        for country in ["SE", "DE", "", None, "CN"]:
            assert negotiate(pref, country) in SUPPORTED

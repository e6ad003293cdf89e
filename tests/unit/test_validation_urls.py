"""URLs that urllib refuses to split are refused with a reason, not an exception."""

import pytest

from core.vocab import RejectReason
from processors.errors import RejectedInput
from processors.rendering import safe_url
from processors.validation import https_url


@pytest.mark.parametrize("url", ["https://[::1/x", "http://ex]ample.org/", "https://[zz]/"])
def test_unsplittable_urls(url):
    with pytest.raises(RejectedInput) as err:
        https_url("tracking_url", url)
    assert err.value.reason is RejectReason.SCHEMA_MISMATCH
    assert safe_url(url) == "#"

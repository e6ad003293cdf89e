"""The plain-address fast path agrees with email_validator wherever it answers."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.validation import plain_address

LOCAL = st.sampled_from(["a", "Z", "0", ".", "+", "-", "_", "!", "~", "é", "\"", " ",
                         "x" * 63])
LABELS = st.sampled_from(["a", "b1", "shop-7", "EXAMPLE", "xn--bcher-kva", "ab--c", "-a", "a-",
                          "test", "local", "localhost", "é", "", "x" * 63, "y" * 64])
TLDS = st.sampled_from(["com", "ORG", "de", "c", "1", "test", "onion", "arpa", "x" * 64])
ADDRESSES = st.builds(lambda local, labels, tld: f"{''.join(local)}@{'.'.join([*labels, tld])}",
                      st.lists(LOCAL, min_size=1, max_size=5),
                      st.lists(LABELS, min_size=0, max_size=4), TLDS)


def _validator(address: str) -> str | None:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


@settings(max_examples=3000, deadline=None)
@given(ADDRESSES)
def test_fast_path_never_disagrees_with_email_validator(address):
    fast = plain_address(address)
    if fast is not None:
        assert fast == _validator(address), address


def test_common_addresses_take_the_fast_path():
    assert plain_address("Customer.Name+tag@Mail.Example.ORG") == \
        "Customer.Name+tag@mail.example.org"
    assert plain_address("user.1234@shop-7.example.org") == "user.1234@shop-7.example.org"


def test_what_the_fast_path_leaves_to_email_validator():
    for address in ["a@b.test", "a@localhost", "a@xn--bcher-kva.example", "\"q\"@d.de",
                    "a..b@c.de", "é@d.de", "a@1.2.3.4", f"{'x' * 65}@d.de", "a@b-.de",
                    "a@host.local", "a@.de", ".a@d.de"]:
        assert plain_address(address) is None, address

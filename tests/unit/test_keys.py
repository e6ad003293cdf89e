from processors.keys import delivery_event_id, idempotency_key, recipient_domain, recipient_key


def test_idempotency_key_is_deterministic_and_case_insensitive_on_address():
    a = idempotency_key("evt-1", "order_confirmation", "Lena@Example.org ")
    b = idempotency_key("evt-1", "order_confirmation", "lena@example.org")
    assert a == b and len(a) == 40


def test_idempotency_key_differs_by_event_type_and_recipient():
    base = idempotency_key("evt-1", "order_confirmation", "a@example.org")
    assert base != idempotency_key("evt-2", "order_confirmation", "a@example.org")
    assert base != idempotency_key("evt-1", "invoice", "a@example.org")
    assert base != idempotency_key("evt-1", "order_confirmation", "b@example.org")


def test_recipient_key_hides_the_address_and_depends_on_the_secret():
    key = recipient_key("lena@example.org", b"s1")
    assert "lena" not in key and len(key) == 32
    assert key != recipient_key("lena@example.org", b"s2")
    assert key == recipient_key("LENA@example.org", b"s1")


def test_recipient_domain_and_delivery_event_id():
    assert recipient_domain("x@Mail.Example.ORG") == "mail.example.org"
    first = delivery_event_id("k", "sent", 1)
    assert first == delivery_event_id("k", "sent", 1)
    assert first != delivery_event_id("k", "sent", 2)

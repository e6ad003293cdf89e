"""Fixtures shared by the provider and integration tests."""

from tests.fake_apis import fake_apis  # noqa: F401 - a session fixture

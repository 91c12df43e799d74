"""A driver module whose service SDK is not installed."""

import stowage_test_sdk_that_is_not_installed  # type: ignore[import-not-found]  # noqa: F401

"""Reliability and security tests: injected faults, concurrency, secrets, safe defaults."""

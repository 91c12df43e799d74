"""Browser tests: Debian's Chromium, driven by Playwright, on the demo site."""

"""A small site whose form and admin take direct uploads, for the browser and view tests."""

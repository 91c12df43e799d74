"""Real servers for the driver tests, one module per service, each a pytest plugin.

Every module here (not starting with an underscore) is loaded by
``tests/conftest.py``; each defines session fixtures that start its server on
a free 127.0.0.1 port and stop it by PID when the session ends.
"""

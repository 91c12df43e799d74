"""Run lint, type checks and the test suite on each supported combination."""

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
# A missing interpreter must fail the run, not skip its combination silently.
nox.options.error_on_missing_interpreters = True

#: (Python, Django) pairs the suite runs on: one per supported Django minor, and each
#: supported Python once (Django 6.0 and 6.1 need Python 3.12 or later).
COMBINATIONS = [("3.11", "5.2"), ("3.12", "6.0"), ("3.13", "6.1")]


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Check style with ruff."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """Check the package with mypy --strict."""
    session.install(
        "-e", ".[dev,s3,gcs,azure,sftp,webdav,cloudfront]", "-r", "requirements/test.txt"
    )
    session.run("mypy", "--strict", "stowage")


@nox.session
@nox.parametrize("python,django", COMBINATIONS)
def tests(session: nox.Session, django: str) -> None:
    """Run the whole suite, real servers included, on one Python and Django.

    Tests marked ``once`` (the browser, the benchmark's quick run, the storage contract
    over SFTP's second client: slow, and the same whatever the versions) run on the
    newest combination only; the reliability suite (marked ``edges``: minutes long, and
    exercising sockets, TLS, asyncio and threads, which change with Python) on the oldest
    and the newest.
    """
    session.install(
        "-e",
        ".[dev,s3,gcs,azure,sftp,webdav,cloudfront]",
        "-r",
        "requirements/test.txt",
        f"django~={django}.0",
    )
    combination = (session.python, django)
    if combination == COMBINATIONS[-1]:
        left_out = []
    elif combination == COMBINATIONS[0]:
        left_out = ["-m", "not once"]
    else:
        left_out = ["-m", "not once and not edges"]
    session.run("pytest", *left_out, *session.posargs)

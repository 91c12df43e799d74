"""Run lint, type checks and the test suite on each supported combination."""

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

#: (Python, Django) pairs the suite runs on: the oldest supported, then each newer Python.
COMBINATIONS = [("3.11", "5.2"), ("3.12", "6.1"), ("3.13", "6.1")]


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
    """Run the whole suite, real servers included, on one Python and Django."""
    session.install(
        "-e",
        ".[dev,s3,gcs,azure,sftp,webdav,cloudfront]",
        "-r",
        "requirements/test.txt",
        f"django~={django}.0",
    )
    session.run("pytest", *session.posargs)

"""Offer ``manage.py stowage ls|cp|sync|check|settings`` over ``settings.STORAGES``.

The command parses and prints; :mod:`stowage.cli` does the work.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stowage.cli.listing import format_size, write_listing
from stowage.cli.locations import backend_of, parse_location
from stowage.cli.progress import make_progress
from stowage.cli.roundtrip import check_storage
from stowage.cli.transfer import Transfer, TransferError, TransferReport
from stowage.storages_block import storages_block

__all__ = ["Command"]

_LOCATION_HELP = (
    "ALIAS is a key of settings.STORAGES; PREFIX, after a colon, a directory in it "
    "(default: the whole storage)."
)
_TRANSFER_EPILOG = """\
Files are streamed (never read whole into memory), copied by --jobs threads and
verified: sizes always; with --verify checksum (the default) also the content,
by the destination's ETag where it is the MD5 of the bytes sent (S3 single-part
uploads), else by re-reading the destination and comparing SHA-256. A file the
destination already holds identically (same size and, where a checksum is
available, same checksum; else not older) is skipped, so an interrupted run
resumes. Destination names are exactly the source names: existing files are
replaced, never renamed. A failed file is reported and the others continue;
the exit status is non-zero if any failed.

examples:
  manage.py stowage {name} default s3
  manage.py stowage {name} default:uploads s3:uploads --jobs 16 --dry-run
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


class Command(BaseCommand):
    """List, copy, sync and check the configured storages, and write STORAGES for stowage."""

    help = (
        "List, copy, sync and check the storages of settings.STORAGES, and print the "
        "STORAGES setting that moves them to stowage. "
        "Run 'manage.py stowage SUBCOMMAND --help' for each subcommand."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the subcommands ls, cp, sync, check and settings."""
        commands = parser.add_subparsers(
            dest="subcommand", required=True, metavar="SUBCOMMAND", title="subcommands"
        )
        raw = argparse.RawDescriptionHelpFormatter
        ls = commands.add_parser(
            "ls",
            help="list directories and files with sizes and modified times",
            description="List the directories and files under ALIAS[:PREFIX], with their "
            "sizes (bytes) and modified times (UTC). " + _LOCATION_HELP,
        )
        ls.add_argument("location", metavar="ALIAS[:PREFIX]", help="what to list")
        ls.add_argument(
            "-r", "--recursive", action="store_true", help="list every file below, not one level"
        )
        ls.add_argument(
            "-H",
            "--human-readable",
            dest="human",
            action="store_true",
            help="show sizes in KiB, MiB, GiB",
        )
        for name, summary in (
            ("cp", "copy files from one storage to another"),
            ("sync", "copy what differs, and with --delete remove what the source lacks"),
        ):
            transfer = commands.add_parser(
                name,
                help=summary,
                description=f"{summary[0].upper()}{summary[1:]}. {_LOCATION_HELP}",
                epilog=_TRANSFER_EPILOG.format(name=name),
                formatter_class=raw,
            )
            transfer.add_argument("source", metavar="SRC_ALIAS[:PREFIX]", help="copy from")
            transfer.add_argument("target", metavar="DST_ALIAS[:PREFIX]", help="copy to")
            transfer.add_argument(
                "-j",
                "--jobs",
                type=_positive,
                default=8,
                help="files copied at once (default: 8)",
            )
            transfer.add_argument(
                "-n",
                "--dry-run",
                action="store_true",
                help="show what would be done; change nothing",
            )
            transfer.add_argument(
                "--verify",
                choices=("checksum", "size"),
                default="checksum",
                help="what to check after each copy (default: checksum)",
            )
            transfer.add_argument(
                "--size-only",
                action="store_true",
                help="skip destination files of the same size without comparing checksums",
            )
            if name == "sync":
                transfer.add_argument(
                    "--delete",
                    action="store_true",
                    help="delete destination files that the source does not have",
                )
        check = commands.add_parser(
            "check",
            help="write, read, url, delete a small file on each storage and time each step",
            description="Check storages live: write a small unique file, read it back and "
            "compare, get its url(), delete it and confirm it is gone, timing each step. "
            "A failure is diagnosed (credentials, missing bucket, clock skew, connection, "
            "read-only).",
        )
        check.add_argument(
            "aliases", nargs="*", metavar="ALIAS", help="storages to check (default: all)"
        )
        commands.add_parser(
            "settings",
            help="print the STORAGES setting to paste into settings.py, on stowage's classes",
            description="Print a STORAGES setting to paste into settings.py: from "
            "DEFAULT_FILE_STORAGE and STATICFILES_STORAGE where they are still set (Django "
            "ignores them since 5.1), else from the current STORAGES, with django-storages' "
            "and Django's backends replaced by stowage's and the AWS_*, GS_*, AZURE_*, SFTP_* "
            "and FTP_* settings shown as OPTIONS. Secrets appear only as the names of the "
            "settings holding them.",
        )
        cors = commands.add_parser(
            "cors",
            help="print (or --apply) the CORS rule that direct uploads need",
            description="Print, as JSON in the service's own terms, the CORS rule that lets "
            "the direct-upload widget send files from the site's origins to the storage's "
            "service (S3 bucket, GCS bucket, Azure blob service); --apply adds it to the "
            "rules the service has, unless they allow these uploads already.",
        )
        cors.add_argument("alias", nargs="?", default="default", metavar="ALIAS")
        cors.add_argument(
            "--origin",
            action="append",
            default=[],
            help="an origin of the site (repeatable; default: STOWAGE_DIRECT_UPLOADS"
            "['CORS_ORIGINS'])",
        )
        cors.add_argument("--apply", action="store_true", help="add the rule to the service's")
        uploads = commands.add_parser(
            "uploads",
            help="list (or --clean) unfinished and unsubmitted direct uploads",
            description="List the direct uploads of ALIAS that were started and never "
            "finished or never submitted (S3 multipart uploads, staged objects, tus "
            "files); --clean aborts or deletes those older than --older-than hours.",
        )
        uploads.add_argument("alias", nargs="?", default="default", metavar="ALIAS")
        uploads.add_argument("--clean", action="store_true", help="abort or delete them")
        uploads.add_argument(
            "--older-than",
            type=float,
            default=24.0,
            metavar="HOURS",
            help="only those started this many hours ago or more (default 24)",
        )
        for subparser in commands.choices.values():
            # Accepted after the subcommand too; SUPPRESS keeps the main default when absent.
            subparser.add_argument(
                "-v",
                "--verbosity",
                type=int,
                choices=range(4),
                default=argparse.SUPPRESS,
                help="0 quiet, 1 normal, 2 a line per file, 3 as 2",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the chosen subcommand."""
        subcommand = options["subcommand"]
        if subcommand == "ls":
            self.ls(**options)
        elif subcommand == "check":
            self.check_storages(options["aliases"], options["verbosity"])
        elif subcommand == "cors":
            self.cors(options["alias"], options["origin"], apply=options["apply"])
        elif subcommand == "uploads":
            self.uploads(options["alias"], options["older_than"], clean=options["clean"])
        elif subcommand == "settings":
            self.stdout.write(storages_block(), ending="")
        else:
            self.transfer(**options)

    def cors(self, alias: str, origins: list[str], *, apply: bool) -> None:
        """Print the CORS rule direct uploads need; add it to the service's with ``apply``."""
        import json

        from stowage.exceptions import StowageError
        from stowage.uploads.config import upload_settings
        from stowage.uploads.maintenance import apply_cors, cors_document

        self._known_alias(alias)
        origins = origins or list(upload_settings().CORS_ORIGINS)
        try:
            self.stdout.write(json.dumps(cors_document(alias, origins), indent=2))
            if apply:
                added = apply_cors(alias, origins)
                self.stdout.write(
                    f"Added to the CORS rules of {alias!r}."
                    if added
                    else f"The CORS rules of {alias!r} already allow these uploads."
                )
        except StowageError as exc:
            raise CommandError(str(exc)) from exc

    def uploads(self, alias: str, older_than: float, *, clean: bool) -> None:
        """List leftover direct uploads; abort or delete the old ones with ``clean``."""
        import datetime as dt

        from stowage.exceptions import StowageError
        from stowage.uploads.maintenance import find_leftovers, remove_leftover
        from stowage.uploads.reserved import is_marker

        self._known_alias(alias)
        found = removed = 0
        try:
            for leftover, old in find_leftovers(alias, dt.timedelta(hours=older_than)):
                found += 1
                what = "upload" if leftover.upload_id else "staged"
                if is_marker(leftover.key):
                    what = "reserved"  # an upload completing at its name: its marker
                started = leftover.started.isoformat() if leftover.started else "unknown"
                action = ""
                if clean and old:
                    remove_leftover(alias, leftover)
                    removed += 1
                    action = " removed"
                self.stdout.write(f"{what}\t{started}\t{leftover.key}{action}")
        except StowageError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{found} leftover(s), {removed} removed.")

    def _known_alias(self, alias: str) -> None:
        if alias not in settings.STORAGES:
            raise CommandError(
                f"{alias!r} is not in settings.STORAGES; choose one of {sorted(settings.STORAGES)}."
            )

    def ls(self, *, location: str, recursive: bool, human: bool, verbosity: int, **_: Any) -> None:
        """List ``location``."""
        write_listing(
            parse_location(location),
            self.stdout.write,
            recursive=recursive,
            human=human,
            summary=verbosity > 0,
        )

    def transfer(self, *, source: str, target: str, verbosity: int, **options: Any) -> None:
        """Copy (``cp``) or synchronise (``sync``) ``source`` to ``target``."""
        terminal = getattr(self.stdout, "_out", None) if self.stdout.isatty() else None
        progress = make_progress(
            self.stdout.write, self.stderr.write, terminal=terminal, quiet=verbosity == 0
        )
        try:
            report = Transfer(
                parse_location(source),
                parse_location(target),
                progress=progress,
                jobs=options["jobs"],
                dry_run=options["dry_run"],
                delete=options.get("delete", False),
                verify=options["verify"],
                size_only=options["size_only"],
                verbose=verbosity > 1,
            ).run()
        except TransferError as exc:
            raise CommandError(str(exc)) from exc
        if verbosity > 0:
            self.stdout.write(self._summary(report, source, target, options["dry_run"]))
        if report.failed:
            total = len(report.failed) + len(report.copied)
            shown = "; ".join(f"{name} ({reason})" for name, reason in report.failed[:5])
            more = f"; and {len(report.failed) - 5} more" if len(report.failed) > 5 else ""
            raise CommandError(f"{len(report.failed)} of {total} files failed: {shown}{more}")

    @staticmethod
    def _summary(report: TransferReport, source: str, target: str, dry_run: bool) -> str:
        count = len(report.copied)
        size = format_size(report.bytes_copied, human=True)
        parts = [
            f"{'Would copy' if dry_run else 'Copied'} {count} file{'s' * (count != 1)} "
            f"({size}) from {source} to {target}",
            f"{report.skipped} already identical",
        ]
        if report.deleted:
            parts.append(f"{'would delete' if dry_run else 'deleted'} {len(report.deleted)}")
        if report.failed:
            parts.append(f"{len(report.failed)} failed")
        if report.verified:
            methods = ", ".join(f"{n} by {m}" for m, n in sorted(report.verified.items()))
            parts.append(f"verified {methods}")
        return "; ".join(parts) + "."

    def check_storages(self, aliases: list[str], verbosity: int) -> None:
        """Run the live round trip on each of ``aliases`` (default: all)."""
        aliases = aliases or list(settings.STORAGES)
        unknown = [alias for alias in aliases if alias not in settings.STORAGES]
        if unknown:
            known = ", ".join(sorted(settings.STORAGES))
            raise CommandError(f"No storage {', '.join(unknown)} in settings.STORAGES ({known}).")
        failed = []
        for alias in aliases:
            self.stdout.write(f"{alias} ({backend_of(alias)})")
            result = check_storage(alias)
            for step in result.steps:
                style = self.style.SUCCESS if step.status == "ok" else self.style.ERROR
                line = f"  {step.name:<9} {step.status.upper():<6} {step.ms:9.1f} ms  {step.detail}"
                self.stdout.write(line.rstrip(), style_func=style)
            if result.diagnosis is not None:
                self.stdout.write(f"  diagnosis: {result.diagnosis}", style_func=self.style.ERROR)
                failed.append(f"{alias} ({result.diagnosis.kind})")
            elif verbosity > 0:
                self.stdout.write(f"  {alias}: OK", style_func=self.style.SUCCESS)
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(aliases)} storages failed the check: {', '.join(failed)}"
            )

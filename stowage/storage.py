"""Implement Django's Storage API once, over any driver.

:class:`Storage` owns every Django semantic: name rules (through
:mod:`stowage.names`), the overwrite policy, URLs (through
:mod:`stowage.urls`), file objects (:mod:`stowage.files`) and errors. The
driver it wraps only moves bytes for keys.

Saving never overwrites by default and has no check-then-write window: the
adapter asks the driver for an atomic create of each candidate name in turn
(the name itself, then Django's ``name_XXXXXXX.ext`` alternatives) until one
succeeds. Drivers that cannot create atomically fall back to Django's
``exists()``-based choice, and say so in their capabilities.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pathlib
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import File
from django.core.files.storage import Storage as DjangoStorage
from django.core.files.utils import validate_file_name

from stowage import names
from stowage.config import StorageOptions, with_values
from stowage.content_types import content_type_for
from stowage.driver_calls import Steps, arun, call, run
from stowage.drivers.base import (
    Capability,
    Driver,
    DriverOptions,
    ObjectInfo,
    Prefix,
    Readable,
    in_thread,
)
from stowage.exceptions import AlreadyExists, NotFound, UnsupportedOperation
from stowage.files import StorageFile
from stowage.option_resolution import resolve_options
from stowage.registry import load_driver
from stowage.saving import MAX_ATTEMPTS, SavePlan
from stowage.secrecy import SecretSafePickling, deconstructible_without_secrets
from stowage.subclassing import NAME_HOOKS, overrides
from stowage.urls import UrlPolicy, storage_url

if TYPE_CHECKING:
    from stowage.aio import AsyncStorageFile

__all__ = ["Storage"]


def _split_listing(entries: Iterable[ObjectInfo | Prefix]) -> tuple[list[str], list[str]]:
    return _split_names((entry.key, isinstance(entry, Prefix)) for entry in entries)


def _split_names(names: Iterable[tuple[str, bool]]) -> tuple[list[str], list[str]]:
    dirs: list[str] = []
    files: list[str] = []
    for key, is_dir in names:
        (dirs if is_dir else files).append(key.rsplit("/", 1)[-1])
    return dirs, files


class _SecretOption:
    """Read a secret option as an attribute, never keeping it in a storage's ``__dict__``."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def provide(cls, name: str) -> None:
        """Make the secret option ``name`` readable on every storage, unless taken."""
        if not hasattr(Storage, name):
            setattr(Storage, name, cls(name))

    def __get__(self, storage: Any, owner: type[Any] | None = None) -> Any:
        if storage is None:
            return self
        try:
            return getattr(storage.driver_options, self.name)
        except AttributeError:
            raise AttributeError(
                f"{type(storage).__name__!r} object has no attribute {self.name!r}"
            ) from None


@deconstructible_without_secrets
class Storage(SecretSafePickling, DjangoStorage):
    """A Django storage over a stowage driver, configured from ``OPTIONS``.

    ``driver`` names the driver (``"s3"``, ``"local"``, … or
    ``"package.module:Class"``); the service classes such as
    :class:`stowage.S3Storage` fix it. Every other keyword is an option of
    the adapter (:class:`stowage.config.StorageOptions`) or of the driver;
    an unknown one raises ``ImproperlyConfigured`` listing the valid ones.
    """

    #: The driver used when no ``driver`` option is given.
    driver_name: ClassVar[str] = "local"
    #: Django setting read for each option missing from OPTIONS, added to the driver's.
    setting_fallbacks: ClassVar[Mapping[str, str]] = {}
    #: Option dataclasses of a subclass's own (built into ``extra_options``).
    extra_options_classes: ClassVar[tuple[type[Any], ...]] = ()
    #: Take an upload's temporary file on save (move or remove it), as Django's
    #: FileSystemStorage and InMemoryStorage do; remote storages leave it be.
    consume_temporary_uploads: ClassVar[bool] = False

    def __init__(self, *, driver: str | None = None, **options: Any) -> None:
        self._driver_name = driver or self.driver_name
        driver_class = load_driver(self._driver_name)
        resolved = resolve_options(type(self), driver_class, options)
        self.driver_options: DriverOptions = resolved.driver
        self.extra_options: tuple[Any, ...] = resolved.extra
        self._options = resolved.storage
        self._driver_class = driver_class
        # A key this short fits the driver's limits whatever its characters (4 bytes at most each).
        limit = driver_class.max_key_bytes
        if driver_class.max_part_bytes is not None:
            limit = min(limit, driver_class.max_part_bytes)
        self._short_key = limit // 4
        driver_has_location = "location" in driver_class.claimed_options
        self._location = "" if driver_has_location else names.clean_location(self.options.location)
        self._secrets = resolved.secrets
        self._driver: Driver[Any] | None = None
        self._url_policy: UrlPolicy | None = None
        self._lock = threading.Lock()
        self._publish_options(self.driver_options, self._options, *self.extra_options)

    # -- plumbing ---------------------------------------------------------------

    def _publish_options(self, *option_sets: Any) -> None:
        """Make each option readable as an attribute (``storage.bucket_name``).

        They are plain instance attributes rather than a ``__getattr__``: with
        one, Python could not specialise any attribute read on a storage. A
        method or property of the class under an option's name keeps its place,
        and a class attribute that configured an option shows the value in use.
        """
        cls = type(self)
        for options in option_sets:
            for name, field in options.__dataclass_fields__.items():
                if field.metadata.get("secret"):
                    _SecretOption.provide(name)
                elif not hasattr(getattr(cls, name, None), "__get__"):
                    self.__dict__[name] = getattr(options, name)

    @property
    def options(self) -> StorageOptions:
        """Return the adapter's options (:class:`stowage.config.StorageOptions`)."""
        return self._options

    @options.setter
    def options(self, value: StorageOptions) -> None:
        self._options = value
        self._publish_options(value)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled storage (see ``secrecy``), its options readable as attributes."""
        super().__setstate__(state)
        self._publish_options(self.driver_options)

    @property
    def driver(self) -> Driver[Any]:
        """Return the driver, creating it (and its client) on first use."""
        driver = self._driver
        if driver is None:
            with self._lock:
                if self._driver is None:
                    self._driver = self._driver_class(self._options_for_driver())
                driver = self._driver
        return driver

    def _options_for_driver(self) -> DriverOptions:
        """Return the driver's options, the Django settings it defaults to filled in."""
        options = self.driver_options
        missing = {
            option: getattr(settings, setting)
            for option, setting in self._driver_class.setting_defaults.items()
            if getattr(options, option) is None
        }
        if not missing:
            return options
        if isinstance(missing.get("location"), os.PathLike):
            missing["location"] = os.fspath(missing["location"])
        return with_values(options, missing)

    def key(self, name: Any, *, allow_empty: bool = False) -> str:
        """Return the driver key for ``name``, refusing any unsafe name."""
        if type(name) is str and names.is_plain(name):
            key = f"{self._location}/{name}" if self._location else name
        else:
            key = names.join_key(self._location, name, allow_empty=allow_empty)
        if len(key) <= self._short_key:
            return key
        driver_class = self._driver_class
        part_limit = driver_class.max_part_bytes
        too_long = len(key.encode("utf-8")) > driver_class.max_key_bytes
        if part_limit is not None:
            too_long |= any(
                len(part) * 4 > part_limit and len(part.encode("utf-8")) > part_limit
                for part in key.split("/")
            )
        if too_long:
            raise SuspiciousFileOperation(
                f"Storage can not store {str(name)[:80]!r}...: the name is longer than the "
                f"{self._driver_name} backend accepts ({driver_class.max_key_bytes} bytes, "
                f"{part_limit or 'any'} per part)."
            )
        return key

    def _require(self, capability: Capability, what: str) -> None:
        if capability not in self.driver.capabilities:
            raise UnsupportedOperation(f"The {self._driver_name} backend does not support {what}.")

    def __repr__(self) -> str:
        shown = [f"driver={self._driver_name!r}"]
        if self._location:
            shown.append(f"location={self._location!r}")
        return f"<{type(self).__name__} {' '.join(shown)}>"

    def close(self) -> None:
        """Release the driver's connections; the storage stays usable."""
        with self._lock:
            driver, self._driver = self._driver, None
            self._url_policy = None
        if driver is not None:
            driver.close()

    # -- saving -----------------------------------------------------------------

    def plan_save(self, name: Any, content: Any) -> SavePlan:
        """Check the name and describe the content of a save (sync or async)."""
        if name is None:
            name = content.name
        if not hasattr(content, "chunks"):
            content = File(content, name)
        validate_file_name(os.fspath(name), allow_relative_path=True)
        cleaned = names.clean_name(name)
        return SavePlan(
            cleaned,
            content,
            content_type=self.content_type_for(cleaned, content),
            overwrite=self.options.file_overwrite,
            atomic=Capability.ATOMIC_CREATE in self.driver.capabilities,
            spool_threshold=self.options.max_memory_size,
        )

    def owns_name_choice(self) -> bool:
        """Tell whether a subclass overrides a hook that chooses the stored name.

        Such a subclass (``get_available_name``, ``_save`` or ``exists``
        overridden: the "overwrite storage" recipe, say) is saved through
        Django's own algorithm, so its hooks decide; the write under the
        chosen name is still an atomic create, retried under the next
        available name when it loses a race.
        """
        return any(overrides(self, hook) for hook in NAME_HOOKS)

    def save(self, name: Any, content: Any, max_length: int | None = None) -> str:
        """Store ``content`` under ``name`` or a free alternative; return the name used."""
        # A direct upload staged on the service moves there (atomic server-side copy).
        commit = getattr(content, "commit_to", None)
        if callable(commit) and name is not None:
            chosen = commit(self, str(name), max_length)
            if chosen is not None:
                return str(chosen)
        if self.owns_name_choice():
            return str(DjangoStorage.save(self, name, content, max_length))
        plan = self.plan_save(name, content)
        try:
            return run(self._save_steps(plan, max_length), self.driver)
        finally:
            plan.close()

    def _save_steps(self, plan: SavePlan, max_length: int | None) -> Steps[str]:
        """Save ``plan`` under its name or a free alternative: ``save`` and ``asave`` alike."""
        if plan.overwrite:
            chosen = self.get_available_name(plan.name, max_length=max_length)
            yield from self._write_steps(chosen, plan, if_absent=False)
            return chosen
        # Put-if-absent under each candidate name: atomic where the driver
        # declares it, the driver's best effort otherwise (FTP).
        for candidate in plan.candidates(max_length, self.get_alternative_name):
            if plan.look_first and (yield from self._taken_steps(candidate)):
                continue
            try:
                yield from self._write_steps(candidate, plan, if_absent=True)
            except AlreadyExists:
                continue
            return candidate
        raise plan.exhausted()

    def name_taken(self, name: str) -> bool:
        """Tell whether a save must pass ``name`` by: a file, or on a filesystem a directory.

        On an object store a file "a" and files under "a/" coexist, so only a
        file takes the name, as the atomic create (which sees only the key) decides.
        """
        return run(self._taken_steps(name), self.driver)

    def _taken_steps(self, name: str) -> Steps[bool]:
        key = self.key(name)
        if not (yield call("exists", key)):
            return False
        if Capability.REAL_DIRECTORIES in self.driver.capabilities:
            return True
        try:
            yield call("head", key)
        except NotFound:
            return False  # only files under "name/"
        return True

    def _write_steps(self, name: str, plan: SavePlan, *, if_absent: bool) -> Steps[None]:
        """Write the content of ``plan`` under ``name``: the one write of every save.

        A storage that consumes temporary uploads (local files, memory, as
        Django's own storages do) takes an upload's temporary file: the local
        driver moves it into place when it lies on the same file system, and
        the file is gone once saved either way.
        """
        path = plan.temporary_path if self.consume_temporary_uploads else None
        if path is not None:
            adopted = yield call("adopt", self.key(name), path, if_absent=if_absent)
            if adopted is not None:
                return
        yield from self._put_steps(name, plan.reader(), **plan.put_kwargs(if_absent))
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)

    def _put_steps(
        self,
        name: str,
        stream: Readable,
        *,
        size: int | None,
        content_type: str,
        if_absent: bool = False,
        cache_control: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Steps[ObjectInfo]:
        """Put ``stream`` under the clean ``name``: the one write path of every writer."""
        info: ObjectInfo = yield call(
            "put",
            self.key(name),
            stream,
            size=size,
            content_type=content_type,
            if_absent=if_absent,
            cache_control=cache_control,
            metadata=metadata,
            **self.put_extras(name),
        )
        return info

    def get_object_parameters(self, name: str) -> dict[str, Any]:
        """Return the upload headers and metadata for ``name`` (django-storages' hook).

        The default is the ``object_parameters`` option. A subclass may
        return other parameters per file (a Content-Disposition by name, say),
        in the option's form; backends without upload parameters refuse a
        subclass that overrides this.
        """
        return dict(getattr(self.driver_options, "object_parameters", None) or {})

    def put_extras(self, name: str) -> dict[str, Any]:
        """Return the keyword arguments a subclass's hooks add to the driver's put of ``name``."""
        if not overrides(self, "get_object_parameters"):
            return {}
        self._require(Capability.OBJECT_PARAMETERS, "per-file upload parameters")
        return {"object_parameters": self.get_object_parameters(name)}

    def content_type_for(self, name: str, content: Any) -> str:
        """Return the Content-Type to store ``content`` under ``name`` with.

        The name decides, then the content's own ``content_type``, then the
        ``default_content_type`` option (see :mod:`stowage.content_types`).
        """
        return content_type_for(name, content, self.options.default_content_type)

    def upload(self, name: str, stream: Readable, *, size: int | None = None) -> ObjectInfo:
        """Write ``stream`` to ``name``, replacing what is there (``open(name, "wb")``)."""
        return run(self._upload_steps(name, stream, size), self.driver)

    async def aupload(self, name: str, stream: Readable, *, size: int | None = None) -> ObjectInfo:
        """Do :meth:`upload` without blocking the event loop."""
        return await arun(self._upload_steps(name, stream, size), self.driver)

    def _upload_steps(self, name: str, stream: Readable, size: int | None) -> Steps[ObjectInfo]:
        cleaned = names.clean_name(name)
        content_type = self.content_type_for(cleaned, stream)
        return self._put_steps(cleaned, stream, size=size, content_type=content_type)

    def copy(self, source: str, target: str, *, overwrite: bool = False) -> str:
        """Copy ``source`` to ``target``, on the service where it can; return ``target``.

        Without ``overwrite`` an existing ``target`` raises ``AlreadyExists``
        (checked just before the copy).
        """
        source_key, target_key = self.key(source), self.key(target)
        if not overwrite and self.driver.exists(target_key):
            raise AlreadyExists(f"{target!r} already exists.")
        self.driver.copy(source_key, target_key)
        return names.clean_name(target)

    def move(self, source: str, target: str, *, overwrite: bool = False) -> str:
        """Move ``source`` to ``target`` (copy, then delete the source); return ``target``."""
        moved = self.copy(source, target, overwrite=overwrite)
        self.driver.delete(self.key(source))
        return moved

    def _save(self, name: str, content: File[Any]) -> str:
        """Write ``content`` under ``name``, chosen already; return the name written.

        Django's ``Storage.save()`` calls this after ``get_available_name``.
        Without ``file_overwrite`` the write is a create: should the name be
        taken meanwhile, the next ``get_available_name`` is tried, as
        Django's ``FileSystemStorage._save`` does.
        """
        plan = self.plan_save(name, content)
        try:
            chosen = plan.name
            for _ in range(MAX_ATTEMPTS):
                try:
                    write = self._write_steps(chosen, plan, if_absent=not plan.overwrite)
                    run(write, self.driver)
                except AlreadyExists:
                    chosen = names.clean_name(self.get_available_name(chosen))
                    continue
                return chosen
        finally:
            plan.close()
        raise plan.exhausted()

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        """Return ``name`` or Django's next free alternative (overwrite: ``name``).

        Alternatives come from :meth:`get_alternative_name`, so a subclass
        overriding it decides their form.
        """
        # Django's own checks first, so a refusal names the part at fault ('..').
        dir_name, file_name = os.path.split(str(name).replace("\\", "/"))
        if ".." in pathlib.PurePath(dir_name).parts:
            raise SuspiciousFileOperation(f"Detected path traversal attempt in '{dir_name}'")
        validate_file_name(file_name)
        name = names.clean_name(name)
        if self.options.file_overwrite:
            return names.overwrite_name(name, max_length)
        for candidate in names.alternative_names(name, max_length, self.get_alternative_name):
            if not self.exists(candidate):
                return candidate
        raise AssertionError("alternative_names() never ends")  # pragma: no cover

    # -- reading ----------------------------------------------------------------

    def _open(self, name: str, mode: str = "rb") -> File[Any]:
        cleaned = names.clean_name(name)
        if mode not in StorageFile.MODES and Capability.LOCAL_PATH in self.driver.capabilities:
            # Appending and updating in place ("ab", "r+b" …) act on the file
            # itself, as FileSystemStorage's files do; other backends refuse them.
            return File(open(self.path(cleaned), mode))
        return StorageFile(self, cleaned, mode)

    def exists(self, name: str) -> bool:
        """Tell whether ``name`` is a file or a directory in the storage."""
        return self.driver.exists(self.key(name, allow_empty=True))

    def size(self, name: str) -> int:
        """Return the size of ``name`` in bytes."""
        return self.driver.head(self.key(name)).size

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        """Return the directories and files directly inside ``path``."""
        return _split_names(self.driver.list_names(self.key(path, allow_empty=True)))

    def delete(self, name: str) -> None:
        """Delete ``name``; a missing name is not an error."""
        if not name:
            raise ValueError("The name must be given to delete().")
        self.driver.delete(self.key(name))

    def path(self, name: str) -> str:
        """Return the local filesystem path of ``name`` (local driver only)."""
        self._require(Capability.LOCAL_PATH, "local paths (path())")
        return self.driver.local_path(self.key(name, allow_empty=True))

    def url(
        self,
        name: str | None,
        *,
        expire: int | dt.timedelta | None = None,
        method: str = "GET",
        parameters: Mapping[str, str] | None = None,
    ) -> str:
        """Return a URL for ``name``: signed where configured, else public.

        ``expire`` (seconds or a timedelta), ``method`` and ``parameters``
        (response header overrides such as ``ResponseContentDisposition``)
        apply to signed URLs; a backend that cannot sign refuses them.
        """
        policy = self._url_policy
        if policy is None:
            policy = self._url_policy = UrlPolicy(self)
        signer = policy.signer
        if (signer is not None and expire is None and method == "GET" and not parameters) and (
            type(name) is str and name[:1] != "/" and "\\" not in name
        ):
            return signer(self.key(name))  # the usual call: a name that is its own relative path
        return storage_url(self, policy, name, expire=expire, method=method, parameters=parameters)

    # -- times ------------------------------------------------------------------

    def _localize(self, value: dt.datetime | None, what: str) -> dt.datetime:
        if value is None:
            raise UnsupportedOperation(f"The {self._driver_name} backend does not report {what}.")
        if settings.USE_TZ:
            return value.astimezone(dt.UTC)
        return value.astimezone().replace(tzinfo=None)

    def get_modified_time(self, name: str) -> dt.datetime:
        """Return when ``name`` last changed (aware UTC if USE_TZ, else naive local)."""
        return self._localize(self.driver.head(self.key(name)).modified, "modified times")

    def get_created_time(self, name: str) -> dt.datetime:
        """Return when ``name`` was created, where the backend knows it."""
        self._require(Capability.CREATED_TIME, "creation times")
        return self._localize(self.driver.head(self.key(name)).created, "creation times")

    def get_accessed_time(self, name: str) -> dt.datetime:
        """Return when ``name`` was last read, where the backend knows it."""
        self._require(Capability.ACCESSED_TIME, "access times")
        return self._localize(self.driver.head(self.key(name)).accessed, "access times")

    # -- async ------------------------------------------------------------------

    async def asave(self, name: Any, content: Any, max_length: int | None = None) -> str:
        """Do :meth:`save` without blocking the event loop."""
        commit = getattr(content, "commit_to", None)
        if self.owns_name_choice() or (callable(commit) and name is not None):
            # The subclass's hooks (or a direct upload's commit) are sync code:
            # run them off the loop.
            return await in_thread(self.save, name, content, max_length)
        plan = self.plan_save(name, content)
        try:
            return await arun(self._save_steps(plan, max_length), self.driver)
        finally:
            plan.close()

    def aopen(self, name: str, mode: str = "rb") -> AsyncStorageFile:
        """Return an async file for ``name``; no request is made until the first read."""
        from stowage.aio import AsyncStorageFile

        return AsyncStorageFile(self, names.clean_name(name), mode)

    async def aexists(self, name: str) -> bool:
        """Do :meth:`exists` without blocking the event loop."""
        return await self.driver.aexists(self.key(name, allow_empty=True))

    async def adelete(self, name: str) -> None:
        """Do :meth:`delete` without blocking the event loop."""
        if not name:
            raise ValueError("The name must be given to delete().")
        await self.driver.adelete(self.key(name))

    async def asize(self, name: str) -> int:
        """Do :meth:`size` without blocking the event loop."""
        return (await self.driver.ahead(self.key(name))).size

    async def alistdir(self, path: str) -> tuple[list[str], list[str]]:
        """Do :meth:`listdir` without blocking the event loop."""
        key = self.key(path, allow_empty=True)
        if type(self.driver).alist is Driver.alist:
            # No listing of the driver's own: keep only names, as the entries come,
            # on a worker thread (Driver.alist would hold every entry first).
            return await in_thread(lambda: _split_names(self.driver.list_names(key)))
        return _split_listing(await self.driver.alist(key))

    async def aget_modified_time(self, name: str) -> dt.datetime:
        """Do :meth:`get_modified_time` without blocking the event loop."""
        info = await self.driver.ahead(self.key(name))
        return self._localize(info.modified, "modified times")

    async def aurl(
        self,
        name: str | None,
        *,
        expire: int | dt.timedelta | None = None,
        method: str = "GET",
        parameters: Mapping[str, str] | None = None,
    ) -> str:
        """Return :meth:`url`; signing is local computation, so nothing blocks."""
        return self.url(name, expire=expire, method=method, parameters=parameters)

"""Store objects in Amazon S3 or an S3-compatible service, on obstore.

Reads, writes, listings and copies are
:class:`~stowage.drivers._obstore.ObstoreDriver`'s. A save under a new name
is an atomic create: a PUT with ``If-None-Match: *`` for a body up to
``multipart_threshold``. A larger one (or one of unknown size) is one
multipart upload straight to its key, with every header the object gets,
completed with ``If-None-Match: *``: S3 refuses the completion when the key
is taken, and the upload is then aborted (:mod:`~stowage.drivers.s3.creates`).
obstore offers no conditional completion, so those calls are stowage's own
(:mod:`~stowage.drivers.s3.rest`, :mod:`~stowage.drivers.s3.multipart`).
Large overwrites are stowage's own multipart uploads too where the parts
carry CRC32s (:mod:`~stowage.drivers.s3.checksum_support`), which obstore
does not send, and obstore's otherwise; with ``checksum_algorithm="crc32"``
every upload is stowage's own. A copy under a new name (``copy_new``, how a
direct upload reaches its final name) is one multipart upload too, created
with the source's headers, filled by ``UploadPartCopy`` on the service
(parts of up to 1 GiB, several at once) and completed with
``If-None-Match: *``.

Large creates keep the staged path instead (an upload under
``.stowage-uploads/``, copied into place with S3's conditional multipart
copy, then copied once more onto itself because a multipart copy drops the
content headers, objects over 5 GiB keeping S3's defaults) where stowage's
own client cannot follow the configuration: behind an ``https://`` or SOCKS
proxy, or with ``checksum_algorithm="crc64nvme"``. On a server that ignores
conditional writes every create takes the best-effort path below.

Conditional writes (option ``conditional_writes``): some S3-compatible
servers ignore ``If-None-Match: *`` and overwrite. In ``"auto"`` mode the
driver finds out once per endpoint and bucket in each process, with a probe
object under ``.stowage-uploads/`` created twice (the second create must be
refused) and then deleted; the answer is kept in a module-level cache
(:mod:`~stowage.drivers.s3.conditional`). Amazon S3 itself (no
``endpoint_url``) honours the header and is not probed. Where the header is
ignored, the driver no longer declares ``ATOMIC_CREATE`` and creates take
the best-effort path of :class:`~stowage.drivers._obstore.ObstoreDriver`
(staged upload, one last check, unconditional copy), small and large bodies
alike, with one warning on the ``stowage.s3`` logger. ``"require"`` refuses
to save on such a server; ``"off"`` never sends the header.

When the probe runs: the adapter plans a save by asking whether
``ATOMIC_CREATE`` is in ``capabilities``, so that answer must be settled
first. Until the probe has run, ``capabilities`` is a set whose membership
test for ``ATOMIC_CREATE`` alone runs the probe; every other question
(``SIGN`` for URLs, ``PUBLIC_URL`` for system checks) is answered without
I/O, and iterating the set lists only what is known without it. A save
therefore probes just before its first create, and ``manage.py check`` or
``url()`` never write to the bucket. The async twins probe on a worker thread.

URLs: presigned with our own SigV4 signer (response-header overrides,
uploads with ``method="PUT"``, browser POST forms, and signing on a custom
domain for S3-compatible CDNs), or public (path- or virtual-hosted style).

- :mod:`~stowage.drivers.s3.options`: the driver's options;
- :mod:`~stowage.drivers.s3.address`: the bucket's endpoint and each key's path;
- :mod:`~stowage.drivers.s3.conditional`: the conditional-write probe and what it found;
- :mod:`~stowage.drivers.s3.rest`: stowage's own signed S3 calls;
- :mod:`~stowage.drivers.s3.multipart`: the multipart upload API;
- :mod:`~stowage.drivers.s3.creates`: large creates in one multipart upload;
- :mod:`~stowage.drivers.s3.checksums`: the CRC32 and SHA-256 checksums they send;
- :mod:`~stowage.drivers.s3.driver`: the driver.
"""

from __future__ import annotations

from stowage.drivers.s3.driver import S3Driver
from stowage.drivers.s3.options import S3Options

__all__ = ["S3Driver", "S3Options"]

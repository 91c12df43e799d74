"""Let browsers upload files straight to the storage, not through Django's workers.

A :class:`~stowage.forms.DirectUploadField` renders a widget whose script asks
the views of :mod:`stowage.uploads.views` for authorisation, sends the file
to the service (S3: presigned multipart; GCS: a resumable upload session;
Azure: blocks under a SAS; any other storage: a tus 1.0 endpoint in Django,
in chunks) and submits only a signed reference to the staged object. On
save, the staged object is moved to its final name with the storage's
atomic create.

* :mod:`~stowage.uploads.config` — the ``STOWAGE_DIRECT_UPLOADS`` setting, permission hook;
* :mod:`~stowage.uploads.base` — the ticket and what every (cloud) session does;
* :mod:`~stowage.uploads.sessions` — the session classes, and the one a storage gets;
* :mod:`~stowage.uploads.s3`, :mod:`~stowage.uploads.gcs`, :mod:`~stowage.uploads.azure`
  — each cloud service's session and its calls;
* :mod:`~stowage.uploads.cors` — the CORS rule uploads need, in one form for every service;
* :mod:`~stowage.uploads.http` — the server's own calls to a service;
* :mod:`~stowage.uploads.views` and :mod:`~stowage.uploads.urls` — the endpoints;
* :mod:`~stowage.uploads.staged` — the staged file a form hands to the model.
"""

__all__: list[str] = []

"""Store objects in Google Cloud Storage through its JSON API, with google-auth's credentials.

GCS is not on obstore (unlike S3 and Azure) because obstore speaks GCS's XML
API, which no local emulator implements; the JSON API is testable on
fake-gcs-server. stowage sends the requests itself; google-auth makes the
credentials. The driver contract is the same, so the backend can move.

The package is split by concern:

- :mod:`~stowage.drivers.gcs.options`: the options and their checks;
- :mod:`~stowage.drivers.gcs.errors`: what the API's errors become, and
  which are transient;
- :mod:`~stowage.drivers.gcs.json_api`: the requests, on stowage's pool;
- :mod:`~stowage.drivers.gcs.credentials`: credentials and the sender, made
  with google-auth at the first request;
- :mod:`~stowage.drivers.gcs.connection`: the sender made on first use, and
  the retries;
- :mod:`~stowage.drivers.gcs.reading`: metadata and ranged reads;
- :mod:`~stowage.drivers.gcs.uploads`: single-request uploads, and the choice;
- :mod:`~stowage.drivers.gcs.streaming`: resumable uploads, streamed or chunked;
- :mod:`~stowage.drivers.gcs.signing`: V4 signed URLs (HMAC, RSA, IAM signBlob);
- :mod:`~stowage.drivers.gcs.driver`: the driver contract over all of them.
"""

from stowage.drivers.gcs.driver import GCSDriver
from stowage.drivers.gcs.options import GCSOptions

__all__ = ["GCSDriver", "GCSOptions"]

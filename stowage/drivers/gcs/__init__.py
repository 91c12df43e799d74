"""Store objects in Google Cloud Storage through the official client's JSON API.

GCS is not on obstore (unlike S3 and Azure) because obstore speaks GCS's XML
API, which no local emulator implements; the JSON API is testable on
fake-gcs-server. The driver contract is the same, so the backend can move.

The package is split by concern:

- :mod:`~stowage.drivers.gcs.options`: the options and their checks;
- :mod:`~stowage.drivers.gcs.errors`: what the client's errors become, and
  which are transient;
- :mod:`~stowage.drivers.gcs.connection`: credentials, the client made on
  first use, and the retries;
- :mod:`~stowage.drivers.gcs.reading`: metadata and ranged reads;
- :mod:`~stowage.drivers.gcs.uploads`: single-request and resumable uploads;
- :mod:`~stowage.drivers.gcs.signing`: V4 signed URLs (HMAC, RSA, IAM signBlob);
- :mod:`~stowage.drivers.gcs.driver`: the driver contract over all of them.
"""

from stowage.drivers.gcs.driver import GCSDriver
from stowage.drivers.gcs.options import GCSOptions

__all__ = ["GCSDriver", "GCSOptions"]

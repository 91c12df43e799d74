"""Store files on an FTP server, or FTPS (explicit TLS), with the standard library's ftplib.

The package is split by concern:

- :mod:`~stowage.drivers.ftp.options`: the options, and django-storages'
  ``location`` URL;
- :mod:`~stowage.drivers.ftp.replies`: what the server's replies mean, and
  the errors they become;
- :mod:`~stowage.drivers.ftp.connection`: the pool of control connections,
  TLS, and the retries;
- :mod:`~stowage.drivers.ftp.listing`: parsing MLSD facts and LIST lines;
- :mod:`~stowage.drivers.ftp.lookups`: what is at a path, what a directory holds;
- :mod:`~stowage.drivers.ftp.writing`: uploads through a temporary name;
- :mod:`~stowage.drivers.ftp.reading`: ranged downloads;
- :mod:`~stowage.drivers.ftp.driver`: the driver contract over all of them.
"""

from stowage.drivers.base import TEMP_PREFIX
from stowage.drivers.ftp.driver import FTPDriver
from stowage.drivers.ftp.options import FTPOptions

__all__ = ["TEMP_PREFIX", "FTPDriver", "FTPOptions"]

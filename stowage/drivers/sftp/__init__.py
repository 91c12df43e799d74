"""Store files on an SSH server over SFTP, with asyncssh.

The package is split by concern:

- :mod:`~stowage.drivers.sftp.options`: the options, and the login they add up to;
- :mod:`~stowage.drivers.sftp.host_keys`: which server keys are trusted;
- :mod:`~stowage.drivers.sftp.connection`: the one shared connection, the
  event loop it lives on and the retries;
- :mod:`~stowage.drivers.sftp.paths`: inspecting, listing and deleting;
- :mod:`~stowage.drivers.sftp.writing`: writes through a temporary file;
- :mod:`~stowage.drivers.sftp.reading`: ranged reads with reads in flight;
- :mod:`~stowage.drivers.sftp.driver`: the driver contract over all of them.
"""

from stowage.drivers.sftp.driver import SFTPDriver
from stowage.drivers.sftp.options import SFTPOptions

__all__ = ["SFTPDriver", "SFTPOptions"]

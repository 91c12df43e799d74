"""Store files on an SSH server over SFTP, with asyncssh or OpenSSH's ssh program.

The package is split by concern:

- :mod:`~stowage.drivers.sftp.options`: the options, and the login they add up to;
- :mod:`~stowage.drivers.sftp.host_keys`: which server keys asyncssh trusts;
- :mod:`~stowage.drivers.sftp.clients`: the two clients, and the errors the
  driver tells apart on each;
- :mod:`~stowage.drivers.sftp.openssh`: starting ``ssh`` (``client="openssh"``);
- :mod:`~stowage.drivers.sftp.packets`, :mod:`~stowage.drivers.sftp.process`
  and :mod:`~stowage.drivers.sftp.wire`: the SFTP protocol spoken over
  ``ssh``'s pipes;
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

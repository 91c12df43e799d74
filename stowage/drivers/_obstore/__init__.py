"""Share what every obstore-based driver does the same way (S3, Azure).

A subclass builds its obstore store (``_make_store``), sets the attributes
every object gets (``_base_attributes``) and says how a large atomic create
lands (``_finish_create``); everything else is here: streaming single and
multipart uploads, ranged streaming reads, delimiter listings, server-side
copies, error translation and the async twins on obstore's ``*_async``.

Large atomic creates stream to a temporary key under ``.stowage-uploads/``
(obstore offers no conditional multipart completion) and are then copied
into place with a conditional server-side copy. Listings never show that
prefix; a lifecycle rule on it cleans up after crashed processes.

A service that ignores conditional writes (``_creates_atomically`` says so)
gets a best-effort create instead, whatever the size: the body is staged
under that same prefix, the target is checked once more just before the
commit, and the commit is an unconditional server-side copy followed by the
deletion of the staged object. Two writers can still pass that last check
together in the one round trip before the copy; the last copy then wins.
"""

from stowage.drivers._obstore.bodies import HEADER_ATTRIBUTES
from stowage.drivers._obstore.driver import ObstoreDriver
from stowage.drivers._obstore.errors import map_error
from stowage.drivers._obstore.settings import read_ca_bundle, retry_config
from stowage.drivers.base import UPLOADS_PREFIX

__all__ = [
    "HEADER_ATTRIBUTES",
    "UPLOADS_PREFIX",
    "ObstoreDriver",
    "map_error",
    "read_ca_bundle",
    "retry_config",
]

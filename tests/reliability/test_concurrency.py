"""Many threads on one storage instance, as Django shares one per alias, on every backend.

- 50 threads save the same name at once: 50 distinct names come back and
  each holds exactly the bytes its thread wrote (an atomic create, or
  ``O_EXCL`` locally, decides every collision);
- FTP has no atomic create: two racers can both pass the last check before
  the rename, and the later rename replaces the earlier file. What holds is
  asserted: every name holds one complete upload (never torn or mixed), no
  partial or temporary file is left, and at least :data:`MIN_SURVIVORS` of the
  50 uploads survive (how many did is recorded);
- 8 threads run a mix of save, open+read, exists, size, listdir, delete and
  url on one instance: nothing raises and every read matches what was written.

Adding a backend: a ``backend_<name>`` fixture in conftest.py and its name
and operation count in :data:`OPERATIONS_PER_THREAD`.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.base import ContentFile

from stowage import Storage
from stowage.drivers.base import Capability
from tests.reliability._figures import FIGURES
from tests.reliability.conftest import Backend

__all__: list[str] = []

SAVERS = 50
THREADS = 8
#: Mixed operations per thread, by backend.
OPERATIONS_PER_THREAD = {
    "memory": 500,
    "local": 500,
    "s3": 500,
    "azure": 500,
    "gcs": 500,
    "sftp": 500,
    "ftp": 500,
    "webdav": 500,
}
BACKENDS = list(OPERATIONS_PER_THREAD)
#: Backends without an atomic create, and how many of the SAVERS same-name saves each
#: promises to keep. FTP: racers on a new storage all pass the last check together; in
#: 12 measured runs 1, 23, 25 and then 35 to 49 of 50 were kept, so one is promised.
MIN_SURVIVORS = {"ftp": 1}
NO_ATOMIC_CREATE = set(MIN_SURVIVORS)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Return each backend in turn."""
    found: Backend = request.getfixturevalue(f"backend_{request.param}")
    return found


#: Base URLs for backends that have no URLs of their own (url() needs one).
BASE_URLS = {
    "memory": "/files/",
    "sftp": "/files/",
    "ftp": "/files/",
    "webdav": "http://127.0.0.1/files/",
}


def _storage(backend: Backend) -> Storage:
    if backend.name in BASE_URLS:
        return backend.direct(base_url=BASE_URLS[backend.name])
    return backend.direct()


def _body(seed: int, rng: random.Random) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * rng.randint(1, 600)


def _digest(storage: Storage, name: str) -> str:
    with storage.open(name) as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _run_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` on ``count`` threads started together; re-raise the first error."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_fifty_threads_saving_one_name_keep_fifty_intact_files(backend: Backend) -> None:
    storage = _storage(backend)
    # The backend's own declaration decides which promise is checked.
    atomic = Capability.ATOMIC_CREATE in storage.driver.capabilities
    assert atomic == (backend.name not in NO_ATOMIC_CREATE), "MIN_SURVIVORS is out of date"
    if not atomic:
        _race_without_atomic_create(backend, storage)
    else:
        _race_with_atomic_create(backend, storage)


def _race_with_atomic_create(backend: Backend, storage: Storage) -> None:
    """Check that every one of 50 same-name saves survives, whole, under its own name."""
    bodies = [_body(i, random.Random(i)) for i in range(SAVERS)]
    names = _run_threads(
        SAVERS, lambda i: storage.save("race/same.bin", ContentFile(bodies[i], name="same.bin"))
    )
    assert len(set(names)) == SAVERS
    assert "race/same.bin" in names
    for name, body in zip(names, bodies, strict=True):
        assert _digest(storage, name) == hashlib.sha256(body).hexdigest()
    assert sorted(storage.listdir("race")[1]) == sorted(n.split("/")[1] for n in names)
    FIGURES.add("concurrency", backend.name, "same-name saves", SAVERS)
    FIGURES.add("concurrency", backend.name, "distinct names kept", len(set(names)))


def _race_without_atomic_create(backend: Backend, storage: Storage) -> None:
    """Check what FTP guarantees when 50 threads save one name, and count the survivors."""
    bodies = [_body(i, random.Random(i)) for i in range(SAVERS)]
    digests = {hashlib.sha256(body).hexdigest() for body in bodies}
    names = _run_threads(
        SAVERS, lambda i: storage.save("race/same.bin", ContentFile(bodies[i], name="same.bin"))
    )
    listed = sorted(storage.listdir("race")[1])
    # No partial or temporary file is visible: every listed name was returned to a saver.
    assert listed == sorted({n.split("/")[1] for n in names})
    held = [_digest(storage, name) for name in sorted(set(names))]
    # Each name holds one complete upload, and no upload is held twice.
    assert set(held) <= digests
    assert len(set(held)) == len(held)
    # Only a rename racing within the last round trip can replace a file.
    bound = MIN_SURVIVORS[backend.name]
    assert len(held) >= bound, f"{len(held)} of {SAVERS} uploads kept, {bound} promised"
    assert not [n for n in storage.driver.list("race") if "tmp" in n.key]
    FIGURES.add("concurrency", backend.name, "same-name saves", SAVERS)
    FIGURES.add("concurrency", backend.name, "distinct names kept", len(held))


def _mixed(storage: Storage, index: int, operations: int, shared: str) -> int:
    """Run ``operations`` mixed calls in this thread's directory; return how many ran."""
    rng = random.Random(index)
    directory = f"mix/t{index}"
    mine: dict[str, str] = {}
    shared_digest = hashlib.sha256(_body(-1, random.Random(-1))).hexdigest()
    for step in range(operations):
        kind = (
            "save"
            if len(mine) < 2
            else rng.choice(["save", "read", "read", "exists", "size", "listdir", "delete", "url"])
        )
        if kind == "save":
            body = _body(index * 100_000 + step, rng)
            name = storage.save(f"{directory}/f.bin", ContentFile(body))
            mine[name] = hashlib.sha256(body).hexdigest()
            continue
        name = rng.choice(sorted(mine))
        if kind == "read":
            target = shared if step % 2 else name
            expected = shared_digest if step % 2 else mine[name]
            assert _digest(storage, target) == expected, f"{target} read back corrupted"
        elif kind == "exists":
            assert storage.exists(name)
        elif kind == "size":
            assert storage.size(name) > 0
        elif kind == "listdir":
            dirs, files = storage.listdir(directory)
            assert (dirs, sorted(files)) == ([], sorted(n.rsplit("/", 1)[1] for n in mine))
        elif kind == "delete":
            storage.delete(name)
            del mine[name]
            assert not storage.exists(name)
        else:
            assert isinstance(storage.url(name), str)
    for name, digest in mine.items():
        assert _digest(storage, name) == digest
    return operations


def test_one_instance_shared_by_threads_doing_mixed_operations(backend: Backend) -> None:
    storage = _storage(backend)
    shared = storage.save("mix/shared.bin", ContentFile(_body(-1, random.Random(-1))))
    operations = OPERATIONS_PER_THREAD[backend.name]
    done = _run_threads(THREADS, lambda i: _mixed(storage, i, operations, shared))
    assert sum(done) == THREADS * operations
    FIGURES.add("concurrency", backend.name, "threads x mixed operations", THREADS * operations)

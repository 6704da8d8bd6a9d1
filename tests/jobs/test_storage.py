"""jobs.storage: storage away is StorageUnavailable, to be waited out; a file missing while storage
answers is FileNotFoundError, that file's loss."""

import logging
import os
import stat
import tempfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from jobs import storage
from jobs.storage import StorageUnavailable


def test_storage_away_refuses_reads_writes_and_listings_as_unavailable(outage):
    name = storage.save("tiles/job/0-0.tile", b"pixels")
    outage.begin()
    for call in (lambda: storage.read(name), lambda: storage.save("results/r.png", b"x"), storage.probe):
        with pytest.raises(StorageUnavailable):
            with storage.calls("a call"):
                call()
    assert not storage.reachable()
    outage.end()
    assert storage.read(name) == b"pixels" and storage.reachable()


def test_a_missing_file_while_storage_answers_is_missing_not_an_outage(media_root):
    storage.save("originals/there.png", b"x")
    with pytest.raises(FileNotFoundError) as missing:
        storage.read("originals/not-there.png")
    assert not isinstance(missing.value, StorageUnavailable)


def test_a_missing_root_is_storage_away(media_root):
    assert not media_root.exists()  # nothing saved yet: every read finds nothing at all
    with pytest.raises(StorageUnavailable):
        storage.read("originals/x.png")


def test_a_save_replaces_what_an_earlier_attempt_left_under_the_same_name(media_root):
    assert storage.save("tiles/j/0-1.tile", b"first") == "tiles/j/0-1.tile"
    assert storage.save("tiles/j/0-1.tile", b"second") == "tiles/j/0-1.tile"
    assert storage.read("tiles/j/0-1.tile") == b"second"


def test_files_that_cannot_be_discarded_are_logged_and_the_rest_still_go(outage, caplog):
    kept = storage.save("results/kept.png", b"x")
    outage.begin("results")
    gone = storage.save("tiles/j/0-0.tile", b"y")
    with caplog.at_level(logging.WARNING):
        storage.discard([kept, gone])
    assert f"could not delete {kept}" in caplog.text
    assert not default_storage.exists(gone)


def test_a_spool_beside_local_storage_is_linked_into_it_not_copied(media_root, tmp_path):
    spools = tmp_path / "spools"  # the same filesystem as media_root
    spools.mkdir()
    with storage.spool(spools) as handle:
        handle.write(b"a result written band by band")
        assert not list(spools.iterdir())  # nameless: a collector killed now leaves nothing
        inode = os.fstat(handle.fileno()).st_ino
        assert storage.save_file("results/linked.png", handle) == "results/linked.png"
    stored = Path(default_storage.path("results/linked.png"))
    assert stored.stat().st_ino == inode and not list(spools.iterdir())  # the same file, named
    assert storage.read("results/linked.png") == b"a result written band by band"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o644  # readable by the web, as a saved file is
    assert not [name for name in os.listdir(stored.parent) if name.startswith(".")]
    with storage.spool(spools) as again:  # a second attempt replaces the first
        again.write(b"again")
        storage.save_file("results/linked.png", again)
    assert storage.read("results/linked.png") == b"again"


def test_a_file_storage_cannot_link_is_copied(media_root, tmp_path):
    with tempfile.TemporaryFile(dir=tmp_path) as unlinkable:  # Python's: made never to be linked
        unlinkable.write(b"unlinkable")
        storage.save_file("results/copied.png", unlinkable)
    assert storage.read("results/copied.png") == b"unlinkable"
    elsewhere = Path("/dev/shm")
    if not elsewhere.is_dir() or elsewhere.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem here to spool on")
    with storage.spool(elsewhere) as across:  # another filesystem: EXDEV
        across.write(b"across filesystems")
        storage.save_file("results/across.png", across)
    assert storage.read("results/across.png") == b"across filesystems"

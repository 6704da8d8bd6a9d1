"""Serving a job's zoomable views: the DeepZoom pyramids ``pipeline.pyramids`` stored, one zip
each, read a tile at a time. A web process keeps the last few zips it read open (their
directories read once), so a tile is a seek and a read."""

from __future__ import annotations

import re
import threading
import zipfile
from collections import OrderedDict

from imagepipe.core.deepzoom import BASENAME

from . import storage
from .models import Job

WHICH = ("original", "result")
TILE = re.compile(r"^\d{1,2}/\d{1,6}_\d{1,6}\.(jpg|png)$")
KEPT_OPEN = 8
CONTENT_TYPES = {"dzi": "application/xml", "jpg": "image/jpeg", "png": "image/png"}


class Missing(Exception):
    """No such pyramid or tile."""


def name(job_id, which: str) -> str:
    """Where a zoomable view's pyramid is stored: beside the job's previews, so it goes with them."""
    return f"previews/{job_id}/{which}-pyramid.zip"


def stored_name(job: Job, which: str) -> str:
    """The job's pyramid of ``which``: its result itself when it asked for a DeepZoom result."""
    if which == "result" and job.output_format == "deepzoom":
        return str(job.result.name)
    return name(job.pk, which)


_open: OrderedDict[str, zipfile.ZipFile] = OrderedDict()
_lock = threading.Lock()


def _archive(stored: str) -> zipfile.ZipFile:
    found = _open.get(stored)
    if found is not None:
        _open.move_to_end(stored)
        return found
    try:
        archive = zipfile.ZipFile(storage.Stream(stored))  # read, seek and tell are all it needs
    except FileNotFoundError:
        raise Missing(f"no pyramid {stored}") from None
    except zipfile.BadZipFile as exc:
        raise Missing(f"the pyramid {stored} is unreadable: {exc}") from None
    _open[stored] = archive
    if len(_open) > KEPT_OPEN:
        _open.popitem(last=False)[1].close()
    return archive


def read(job: Job, which: str, member: str) -> tuple[bytes, str]:
    """``pyramid.dzi`` or a tile (``<level>/<column>_<row>.<format>``) of the job's pyramid, and
    its content type; Missing if there is none."""
    if member != f"{BASENAME}.dzi" and not TILE.match(member):
        raise Missing(f"no {member} in a pyramid")
    inside = member if member.endswith(".dzi") else f"{BASENAME}_files/{member}"
    with _lock:
        archive = _archive(stored_name(job, which))
        try:
            data = archive.read(inside)
        except KeyError:
            raise Missing(f"no {member} in the {which}'s pyramid") from None
    return data, CONTENT_TYPES[member.rsplit(".", 1)[1]]

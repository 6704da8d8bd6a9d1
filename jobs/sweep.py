"""Storage against the database: files no row names are deleted, rows whose files are gone are
told of, and a done job whose result is gone fails saying so (no download of nothing).

What the project writes, and what names it:

* ``originals/<file>`` and ``results/<file>``: a job's ``original`` and ``result``;
* ``tiles/<job id>/<file>``: a tile's ``result``, while its job is not done (a done job's result
  holds their pixels, and ``Job.discard_tile_files`` deletes them);
* ``previews/<job id>/<file>``: the job, while it exists (``jobs.previews``);
* ``uploads/<upload id>/<piece>``: a resumable upload, while it exists (``jobs.models.Upload``).

Anything else in storage is not the project's and is left alone. An unnamed file is deleted only
once older than SWEEP_GRACE_SECONDS, since each is written just before the row that names it
commits; a row counts as missing its file only if it was written before the sweep began (its
file was there to be listed), and only after storage is asked again. Storage is listed through
the Storage API one directory at a time and checked against the database a page of names a
query, so memory is one directory's names (``listdir`` returns a directory whole).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Count, QuerySet
from django.utils import timezone

from . import storage
from .events import push_status
from .models import Job, Tile, Upload

logger = logging.getLogger(__name__)
PAGE = 500  # names checked against the database in one query
DIRECTORIES_A_PAGE = 20  # job folders listed between two looks at the database


class Sweep:
    """One sweep, run whole (``run``) or a page at a time (``step``, the collector's idle time).
    ``note`` hears each finding as it is made; ``counts`` adds them up."""

    def __init__(self, dry_run: bool = False, note: Callable[[str], None] = logger.warning) -> None:
        self.dry_run, self.note = dry_run, note
        self.counts: Counter[str] = Counter()
        self.began = timezone.now()
        self.folders: set[str] = set()  # the folders of tiles/ (jobs with tiles stored)
        self.pages = self._pages()

    def run(self) -> Counter[str]:
        while self.step():
            pass
        return self.counts

    def step(self) -> bool:
        """One page; whether there is more. StorageUnavailable ends it: nothing is judged then."""
        try:
            next(self.pages)
        except StopIteration:
            logger.info("storage sweep%s: %s", " (dry run)" if self.dry_run else "", self.summary())
            return False
        return True

    def _pages(self) -> Iterator[None]:
        with storage.calls("listing storage"):  # away, or a local root that isn't there: not judged
            storage.probe()
        yield from self._flat("originals", "original", Job.objects.filter(created_at__lt=self.began))
        done = Job.objects.filter(status=Job.Status.DONE, finished_at__lt=self.began)
        yield from self._flat("results", "result", done)
        yield from self._tile_folders()
        yield from self._tiles_without_a_folder()
        yield from self._row_folders("previews", Job)
        yield from self._row_folders("uploads", Upload)

    def _flat(self, folder: str, column: str, rows: QuerySet[Job]) -> Iterator[None]:
        """A folder of one file per job: files no job names, then jobs whose file isn't there."""
        _, files = self._listed(folder)
        self.counts["listed"] += len(files)
        for page in _batched(sorted(f"{folder}/{name}" for name in files), PAGE):
            named = set(Job.objects.filter(**{f"{column}__in": page}).values_list(column, flat=True))
            self._drop(name for name in page if name not in named)
            yield
        for found in _keyset(rows.exclude(**{column: ""}).order_by("pk").values_list("pk", column)):
            for pk, name in found:
                if name.removeprefix(f"{folder}/") not in files and self._gone(name):
                    self._missing(folder, pk, name, trusted=bool(files))
            yield

    def _missing(self, folder: str, pk: uuid.UUID, name: str, trusted: bool) -> None:
        job = Job.objects.defer("icc_profile").filter(pk=pk).first()
        if job is None:
            return  # deleted meanwhile, its files with it
        self.counts[f"missing_{folder}"] += 1
        if folder != "results":
            self.note(f"job {job.pk}: its original {name} is missing from storage")
        elif not trusted:  # no result stored at all: more likely the wrong storage than all lost
            self.note(f"job {job.pk}: its result {name} is missing (not failed: storage holds no results)")
        elif self.dry_run:
            self.note(f"job {job.pk}: its result {name} is missing (would be failed)")
        elif job.lose_result():
            self.counts["jobs_failed"] += 1
            self.note(f"job {job.pk}: its result {name} is missing; the job is failed")
            push_status(job)

    def _tile_folders(self) -> Iterator[None]:
        """Each job's tiles: files of jobs done or gone, then tiles done whose file isn't there."""
        folders, _ = self._listed("tiles")
        self.folders = set(folders)
        for page in _batched(sorted(folders), DIRECTORIES_A_PAGE):
            jobs = {folder: job for folder in page if (job := _uuid(folder))}
            unfinished = Job.objects.filter(pk__in=jobs.values()).exclude(status=Job.Status.DONE)
            open_ids = list(unfinished.values_list("pk", flat=True))
            open_jobs = {str(pk) for pk in open_ids}
            named: dict[str, dict[str, datetime | None]] = {}  # a job folder's tiles: when recorded
            for job, name, at in (
                Tile.objects.filter(job__in=open_ids)
                .exclude(result="")
                .values_list("job_id", "result", "finished_at")
            ):
                named.setdefault(str(job), {})[name] = at
            for folder in page:
                _, files = self._listed(f"tiles/{folder}")
                self.counts["listed"] += len(files)
                names = {f"tiles/{folder}/{name}" for name in files}
                tiles = named.get(folder, {})
                self._drop(sorted(names - set(tiles)))
                if folder not in open_jobs:  # no tile is stored for a job done or gone
                    self._tidy(f"tiles/{folder}")
                lost = [name for name, at in tiles.items() if name not in names and at and at < self.began]
                self._tiles_missing(folder, sum(self._gone(name) for name in lost))
            yield

    def _tiles_without_a_folder(self) -> Iterator[None]:
        """Jobs not done with tiles recorded, and no folder of tiles at all."""
        rows = Job.objects.exclude(status=Job.Status.DONE).filter(tiles_done__gt=0).order_by("pk")
        for page in _keyset(rows.values_list("pk", flat=True)):
            unlisted = [pk for pk in page if str(pk) not in self.folders]
            tiles = Tile.objects.filter(job__in=unlisted, finished_at__lt=self.began).exclude(result="")
            for job, count in tiles.values_list("job").annotate(n=Count("pk")).order_by():
                if not self._listed(f"tiles/{job}")[1]:  # asked again: made since the listing?
                    self._tiles_missing(str(job), count)
            yield

    def _tiles_missing(self, job: str, count: int) -> None:
        if count:
            self.counts["missing_tiles"] += count
            self.note(f"job {job}: {count} of its recorded tiles are missing from storage")

    def _row_folders(self, folder: str, model: type[Job] | type[Upload]) -> Iterator[None]:
        """A folder per row (a job's previews, an upload's pieces): those whose row is gone."""
        folders, _ = self._listed(folder)
        for page in _batched(sorted(folders), PAGE):
            rows = {name: pk for name in page if (pk := _uuid(name))}
            found = model.objects.filter(pk__in=rows.values()).values_list("pk", flat=True)
            alive = {str(pk) for pk in found}
            for name in page:
                if name in alive:
                    continue
                _, files = self._listed(f"{folder}/{name}")
                self.counts["listed"] += len(files)
                self._drop(f"{folder}/{name}/{file}" for file in sorted(files))
                self._tidy(f"{folder}/{name}")
            yield

    def _listed(self, folder: str) -> tuple[list[str], list[str]]:
        try:
            with storage.calls(f"listing {folder}"):
                return default_storage.listdir(folder)
        except FileNotFoundError:  # storage answers: the folder isn't there
            return [], []

    def _drop(self, names: Iterable[str]) -> None:
        """Delete the files no row names, unless written within the grace period."""
        cutoff = self.began - timedelta(seconds=settings.SWEEP_GRACE_SECONDS)
        for name in names:
            try:
                with storage.calls(f"reading the time of {name}"):
                    recent = default_storage.get_modified_time(name) >= cutoff
            except FileNotFoundError:
                continue  # deleted meanwhile
            if recent:
                self.counts["unnamed_recent"] += 1
                continue
            self.counts["unnamed_deleted"] += 1
            self.note(f"{name}: no row names it; {'would be deleted' if self.dry_run else 'deleted'}")
            if not self.dry_run:
                with storage.calls(f"deleting {name}"):
                    default_storage.delete(name)

    def _gone(self, name: str) -> bool:
        """Not in storage, asked again by name, while storage answers."""
        with storage.calls(f"looking for {name}"):
            if default_storage.exists(name):
                return False
        if not storage.reachable():  # a local disk away answers "no such file" for every name
            raise storage.StorageUnavailable(f"looking for {name}: storage does not answer")
        return True

    def _tidy(self, folder: str) -> None:
        """A local folder left empty goes too (object storage has no folders), so the next sweep
        lists what there is, not every job there ever was."""
        if self.dry_run:
            return
        try:
            os.rmdir(default_storage.path(folder))
        except (NotImplementedError, OSError):  # not a disk, or not empty
            pass

    def summary(self) -> str:
        c = self.counts
        deleted = "would delete" if self.dry_run else "deleted"
        return (
            f"{c['listed']} files listed; {c['unnamed_deleted']} no row names {deleted}, "
            f"{c['unnamed_recent']} more kept (younger than {settings.SWEEP_GRACE_SECONDS:g} s); missing: "
            f"{c['missing_results']} results ({c['jobs_failed']} jobs failed), "
            f"{c['missing_originals']} originals, {c['missing_tiles']} tiles"
        )


def _batched(names: Iterable[str], size: int) -> Iterator[list[str]]:
    names = iter(names)
    while page := list(islice(names, size)):
        yield page


def _keyset(rows: QuerySet) -> Iterator[list[Any]]:
    """``rows`` (ordered by pk, pk first or alone) a page at a time, each page one query."""
    last = None
    while True:
        page = list((rows.filter(pk__gt=last) if last is not None else rows)[:PAGE])
        if not page:
            return
        yield page
        last = page[-1][0] if isinstance(page[-1], tuple) else page[-1]


def _uuid(folder: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(folder)
    except ValueError:
        return None

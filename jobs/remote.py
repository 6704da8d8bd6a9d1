"""The API from another machine, for ``manage.py submit --server``: an image sent as a resumable
upload (``/api/uploads/``) that goes on after a dropped connection, from where the server says it
reached, then submitted as a job. Python's own HTTP client: nothing to install on the machine."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.utils.dateparse import parse_datetime

from .models import Job

RETRIES = 8  # a piece's tries after its first, 1 s apart and doubling up to 30 s


class RemoteError(Exception):
    """The server refused (its error is the message), or could not be reached in all the tries."""


class Remote:
    def __init__(self, server: str, token: str, note: Callable[[str], None] = print, timeout: float = 120):
        self.server, self.token, self.note, self.timeout = server.rstrip("/"), token, note, timeout

    def call(self, method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, Any]:
        """The status and JSON answer of one request; OSError if the server is not reached."""
        request = urllib.request.Request(
            self.server + path,
            data=body,
            method=method,
            headers={"Authorization": f"Token {self.token}", "Accept": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as refused:
            try:
                return refused.code, json.loads(refused.read() or b"{}")
            except ValueError:
                return refused.code, {}

    def send_json(self, method: str, path: str, fields: dict) -> tuple[int, Any]:
        return self.call(method, path, json.dumps(fields).encode(), **{"Content-Type": "application/json"})

    def upload(self, path: Path) -> str:
        """Send the file as a resumable upload (one of the user's under way for the same name and
        size is gone on with); its id, once every byte is in."""
        size = path.stat().st_size
        upload = self.under_way(path.name, size)
        if upload:
            self.note(f"resuming upload {upload['id']} at {upload['offset']} of {size} bytes")
        else:
            fields = {"filename": path.name, "size": size}
            status, upload = self.retried(lambda: self.send_json("POST", "/api/uploads/", fields))
            if status != 201:
                raise RemoteError(refusal(status, upload))
        offset, tries = upload["offset"], 0
        with path.open("rb") as handle:
            while offset < size:
                handle.seek(offset)
                piece = handle.read(upload["chunk_bytes"])
                try:
                    status, answer = self.call(
                        "PATCH",
                        f"/api/uploads/{upload['id']}/",
                        piece,
                        **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
                    )
                except OSError as exc:
                    status, answer = 0, {"error": str(exc)}
                if status in (200, 409):  # 409: the server has another offset; go on from it
                    offset, tries = answer["offset"], 0
                elif 0 < status < 500:
                    raise RemoteError(refusal(status, answer))
                else:
                    tries += 1
                    offset = self.wait_to_go_on(upload["id"], offset, tries, answer)
        return upload["id"]

    def under_way(self, filename: str, size: int) -> dict | None:
        status, page = self.retried(lambda: self.call("GET", "/api/uploads/"))
        if status != 200:
            raise RemoteError(refusal(status, page))
        return next((u for u in page["results"] if (u["filename"], u["size"]) == (filename, size)), None)

    def wait_to_go_on(self, upload_id: str, offset: int, tries: int, answer: dict) -> int:
        """After a lost piece: wait, then ask the server where the upload reached."""
        if tries > RETRIES:
            why = answer.get("error")
            raise RemoteError(f"the upload stopped at {offset} bytes ({why}); run again to go on from there")
        wait = min(30, 2 ** (tries - 1))
        self.note(f"piece at {offset} not stored ({answer.get('error')}); trying again in {wait} s")
        time.sleep(wait)
        try:
            status, state = self.call("GET", f"/api/uploads/{upload_id}/")
        except OSError:
            return offset
        return state["offset"] if status == 200 else offset

    def retried(self, request: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
        for tries in range(RETRIES + 1):
            try:
                status, answer = request()
            except OSError as exc:
                status, answer = 0, {"error": str(exc)}
            if 0 < status < 500:
                return status, answer
            wait = min(30, 2**tries)
            why = answer.get("error") or status
            self.note(f"the server did not answer ({why}); trying again in {wait} s")
            time.sleep(wait)
        raise RemoteError(f"the server did not answer in {RETRIES + 1} tries")

    def submit(self, upload_id: str, fields: dict) -> dict:
        status, job = self.send_json("POST", "/api/jobs/", {"upload": upload_id, **fields})
        if status != 201:
            raise RemoteError(refusal(status, job))
        return job

    def job(self, job_id: str) -> Job:
        """The job as the API tells it, as an unsaved Job (what the progress bar reads)."""
        status, body = self.retried(lambda: self.call("GET", f"/api/jobs/{job_id}/"))
        if status != 200:
            raise RemoteError(refusal(status, body))
        times = {
            name: parse_datetime(body[name]) if body[name] else None
            for name in ("created_at", "started_at", "finished_at")
        }
        return Job(
            pk=body["id"],
            status=body["status"],
            tiles_done=body["tiles_done"],
            tiles_total=body["tiles_total"],
            error=body["error"],
            **times,
        )


def refusal(status: int, answer: Any) -> str:
    detail = answer.get("error") or answer.get("detail") if isinstance(answer, dict) else None
    return f"{status}: {detail or answer}"

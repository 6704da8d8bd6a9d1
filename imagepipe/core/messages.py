"""Kafka message envelopes: a small versioned JSON header plus a binary payload.

Messages carry ids and plain values, never model objects.  Layout of a value::

    b"IPM" | version (1 byte) | header length (4 bytes, big endian) | header JSON | payload

Anything that does not parse raises ``MessageError``; consumers log and skip it.
"""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

VERSION = 1
_PREFIX = struct.Struct("!3sBI")
_MAGIC = b"IPM"


class MessageError(ValueError):
    """A message that is not a well-formed ImagePipe envelope."""


def pack(header: dict[str, Any], payload: bytes = b"") -> bytes:
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return _PREFIX.pack(_MAGIC, VERSION, len(encoded)) + encoded + payload


def unpack(value: bytes | None) -> tuple[dict[str, Any], bytes]:
    if not value or len(value) < _PREFIX.size:
        raise MessageError("empty or truncated message")
    magic, version, length = _PREFIX.unpack_from(value)
    if magic != _MAGIC:
        raise MessageError("not an ImagePipe message")
    if version != VERSION:
        raise MessageError(f"unsupported message version {version}")
    end = _PREFIX.size + length
    try:
        header = json.loads(value[_PREFIX.size : end])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"bad message header: {exc}") from exc
    if not isinstance(header, dict):
        raise MessageError("message header is not an object")
    return header, value[end:]


@dataclass
class Task:
    """One tile to process: its padded pixels travel as the payload."""

    job: str
    index: int
    core: list[int]  # [left, top, right, bottom] in image coordinates
    padded: list[int]
    size: list[int]  # [width, height] of the image this stage works on
    operations: list[dict[str, Any]]  # this stage's steps
    stage: int = 0
    table: list[int] | None = None  # lookup table of the stage's leading global step
    stat: str = ""  # the statistic to report for the next stage ("" for none)
    attempt: int = 1

    def encode(self, pixels: bytes) -> bytes:
        return pack({"kind": "task", **asdict(self)}, pixels)

    @classmethod
    def decode(cls, value: bytes | None) -> tuple[Task, bytes]:
        header, payload = unpack(value)
        return _build(cls, header, "task"), payload


@dataclass
class Result:
    """A processed tile (core only) or, when ``error`` is set, why it failed."""

    job: str
    index: int
    worker: str
    duration_ms: int
    task_partition: int
    task_offset: int
    stage: int = 0
    stats: list[int] | None = None
    error: str = ""

    def encode(self, pixels: bytes = b"") -> bytes:
        return pack({"kind": "result", **asdict(self)}, pixels)

    @classmethod
    def decode(cls, value: bytes | None) -> tuple[Result, bytes]:
        header, payload = unpack(value)
        return _build(cls, header, "result"), payload


@dataclass
class Heartbeat:
    worker: str
    host: str
    pid: int
    tiles_done: int
    current_job: str = ""
    partitions: list[int] = field(default_factory=list)
    stopping: bool = False
    counters: dict[str, int] = field(default_factory=dict)  # malformed, dead_lettered, skipped, retried

    def encode(self) -> bytes:
        return pack({"kind": "heartbeat", **asdict(self)})

    @classmethod
    def decode(cls, value: bytes | None) -> Heartbeat:
        header, _ = unpack(value)
        return _build(cls, header, "heartbeat")


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _counts(value) -> bool:
    return isinstance(value, list) and all(_count(item) for item in value)


# What each annotated field type must hold, so a well-formed envelope with wrong values
# (a negative offset, a string for an index) is refused here, not deep in a consumer.
_VALID = {
    "str": lambda v: isinstance(v, str),
    "int": _count,
    "bool": lambda v: isinstance(v, bool),
    "list[int]": _counts,
    "list[int] | None": lambda v: v is None or _counts(v),
    "list[dict[str, Any]]": lambda v: isinstance(v, list) and all(isinstance(i, dict) for i in v),
    "dict[str, int]": lambda v: (
        isinstance(v, dict) and all(isinstance(k, str) and _count(n) for k, n in v.items())
    ),
}


def _build(cls, header: dict[str, Any], kind: str):
    if header.pop("kind", None) != kind:
        raise MessageError(f"expected a {kind} message")
    try:
        message = cls(**header)
    except TypeError as exc:
        raise MessageError(f"bad {kind} message: {exc}") from exc
    for spec in fields(cls):
        if not _VALID[spec.type](getattr(message, spec.name)):
            raise MessageError(f"bad {kind} message: {spec.name} is not a valid {spec.type}")
    if kind != "heartbeat":
        try:
            uuid.UUID(message.job)
        except ValueError:
            raise MessageError(f"bad {kind} message: job {message.job!r} is not a job id") from None
    return message

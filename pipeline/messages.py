"""Kafka message envelopes: a small versioned JSON header plus a binary payload.

Messages carry ids and plain values, never model objects.  Layout of a value::

    b"IPM" | version (1 byte) | header length (4 bytes, big endian) | header JSON | payload

Anything that does not parse, or holds a value the database could not store (an integer out
of range, an over-long string, a NUL, a lone surrogate), raises ``MessageError`` and nothing
else: consumers count it, log it and skip it.
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, NoReturn, TypeVar, cast

VERSION = 1
_PREFIX = struct.Struct("!3sBI")
_MAGIC = b"IPM"
MAX_HEADER_BYTES = 1 << 20  # a task's header holds a chain and a lookup table: a few KB
INT32 = 2**31 - 1  # Postgres integer columns
INT64 = 2**63 - 1  # Postgres bigint, and any integer inside a JSON column
TEXT = 255  # the longest string a message may carry unless its field says otherwise


class MessageError(ValueError):
    """A message that is not a well-formed ImagePipe envelope."""


Payload = bytes | list[Any]  # bytes, or pieces of it that export a buffer (``codec.array_parts``)


def pack(header: dict[str, Any], payload: Payload = b"") -> bytes:
    """The message: its header, then the payload; given in pieces, they are joined once, here."""
    encoded = json.dumps(header, separators=(",", ":")).encode()
    pieces = payload if isinstance(payload, list) else [payload]
    return b"".join([_PREFIX.pack(_MAGIC, VERSION, len(encoded)), encoded, *pieces])


def unpack(value: bytes | None) -> tuple[dict[str, Any], bytes]:
    if not value or len(value) < _PREFIX.size:
        raise MessageError("empty or truncated message")
    magic, version, length = _PREFIX.unpack_from(value)
    if magic != _MAGIC:
        raise MessageError("not an ImagePipe message")
    if version != VERSION:
        raise MessageError(f"unsupported message version {version}")
    if length > MAX_HEADER_BYTES:
        raise MessageError(f"message header of {length} bytes is over {MAX_HEADER_BYTES}")
    end = _PREFIX.size + length
    try:
        header = json.loads(value[_PREFIX.size : end], parse_constant=_refuse_constant)
    # ValueError: bad JSON, bad UTF-8, an integer of thousands of digits; RecursionError: nesting
    # thousands deep. Either would otherwise escape and end the consumer.
    except (ValueError, RecursionError) as exc:
        raise MessageError(f"bad message header: {str(exc)[:200]}") from None
    if not isinstance(header, dict):
        raise MessageError("message header is not an object")
    return header, value[end:]


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number a message may carry")


def _limit(default: Any = MISSING, **limits: int) -> Any:
    """Bounds on one field beyond its type: ``max`` for integers, ``length`` for strings."""
    return field(default=default, metadata=limits)


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
    generation: int = 0  # the job's retry count when this was sent: a cancel covers those before it
    nonce: str = _limit(default="", length=64)  # this send's, stored on the tile row: its result returns it
    source: list[int] = field(default_factory=list)  # a resampling stage's input window: the payload

    def encode(self, pixels: Payload) -> bytes:
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
    task_offset: int = _limit(max=INT64)
    stage: int = 0
    stats: list[int] | None = None
    error: str = _limit(default="", length=10_000)
    nonce: str = _limit(default="", length=64)  # the task's: which send of the tile this answers

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
    current_job: str = _limit(default="", length=64)
    partitions: list[int] = field(default_factory=list)
    stopped: bool = False  # the worker's last heartbeat: it has stopped
    counters: dict[str, int] = field(default_factory=dict)  # malformed, dead_lettered, skipped, retried

    def encode(self) -> bytes:
        return pack({"kind": "heartbeat", **asdict(self)})

    @classmethod
    def decode(cls, value: bytes | None) -> Heartbeat:
        header, _ = unpack(value)
        return _build(cls, header, "heartbeat")


def _count(value: object, top: int = INT32) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top


def _counts(value: object) -> bool:
    return isinstance(value, list) and all(_count(item, INT64) for item in value)


def _text(value: object, length: int = TEXT) -> bool:
    """A string Postgres can store: UTF-8 encodable (no lone surrogate), no NUL, not too long."""
    if not isinstance(value, str) or len(value) > length or "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


# What each annotated field type must hold, so a well-formed envelope with wrong values
# (a negative offset, a string for an index, a pid past 2**31) is refused here, not deep in
# a consumer or by the database.
_VALID: dict[str, Callable[[object, Mapping[str, int]], bool]] = {
    "str": lambda v, limits: _text(v, limits.get("length", TEXT)),
    "int": lambda v, limits: _count(v, limits.get("max", INT32)),
    "bool": lambda v, limits: isinstance(v, bool),
    "list[int]": lambda v, limits: _counts(v),
    "list[int] | None": lambda v, limits: v is None or _counts(v),
    "list[dict[str, Any]]": lambda v, limits: isinstance(v, list) and all(isinstance(i, dict) for i in v),
    "dict[str, int]": lambda v, limits: (
        isinstance(v, dict) and len(v) <= 64 and all(_text(k, 64) and _count(n, INT64) for k, n in v.items())
    ),
}


_Message = TypeVar("_Message", Task, Result, Heartbeat)


def _build(cls: type[_Message], header: dict[str, Any], kind: str) -> _Message:
    if header.pop("kind", None) != kind:
        raise MessageError(f"expected a {kind} message")
    known = {spec.name for spec in fields(cls)}
    try:
        # A field this version does not know (a newer sender's, or one since retired) is passed
        # over. Any: ``job``, set below, is not a Heartbeat's.
        message: Any = cls(**{name: value for name, value in header.items() if name in known})
    except TypeError as exc:
        raise MessageError(f"bad {kind} message: {str(exc)[:200]}") from None
    for spec in fields(cls):
        # A string: this module's annotations are postponed (``from __future__ import annotations``).
        if not _VALID[cast(str, spec.type)](getattr(message, spec.name), spec.metadata):
            raise MessageError(f"bad {kind} message: {spec.name} is not a valid {spec.type}")
    # Job ids in one spelling, as the database and cancels use: a task's and a result's job, and
    # the job a heartbeat says its worker is on (if any).
    field = "current_job" if kind == "heartbeat" else "job"
    if kind != "heartbeat" or message.current_job:
        setattr(message, field, _job_id(getattr(message, field), kind, field))
    return cast(_Message, message)


def _job_id(value: str, kind: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise MessageError(f"bad {kind} message: {field} {value[:64]!r} is not a job id") from None


@dataclass
class Cancellation:
    """A record of the compacted ``cancellations`` topic: key the job id, value its generation.

    A job cancelled at generation ``g`` has its tiles of generations up to ``g`` dropped; a retry
    raises the job's generation, so the tiles it sends run. No value (a tombstone) forgets the job.
    """

    job: str
    generation: int | None

    @classmethod
    def decode(cls, key: bytes | None, value: bytes | None) -> Cancellation:
        try:
            job = str(uuid.UUID((key or b"").decode("ascii")))
        except (UnicodeDecodeError, ValueError):
            raise MessageError(f"cancellation key {(key or b'')[:64]!r} is not a job id") from None
        if value is None:
            return cls(job, None)
        if value == b"cancelled":  # written before generations existed: the first round
            return cls(job, 0)
        if not (value.isdigit() and len(value) <= 10 and int(value) <= INT32):
            raise MessageError(f"cancellation of {job} has no generation: {value[:64]!r}")
        return cls(job, int(value))

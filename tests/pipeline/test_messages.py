import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.messages import Cancellation, Heartbeat, MessageError, Result, Task, pack
from tests.strategies import headers

JOB = "6d1f3c52-1b7e-4f1e-9a55-0a4f5d5c2b11"


def test_a_task_round_trips_with_its_binary_payload():
    task = Task(
        job=JOB,
        index=3,
        core=[0, 0, 5, 5],
        padded=[0, 0, 9, 9],
        size=[20, 10],
        operations=[{"op": "grayscale"}],
    )
    decoded, payload = Task.decode(task.encode(b"\x00\xffpixels"))
    assert decoded == task
    assert payload == b"\x00\xffpixels"


def test_a_result_and_a_heartbeat_round_trip():
    result = Result(job=JOB, index=1, worker="w", duration_ms=5, task_partition=2, task_offset=9)
    assert Result.decode(result.encode(b"px")) == (result, b"px")
    beat = Heartbeat(worker="w", host="h", pid=1, tiles_done=4, partitions=[0, 3])
    assert Heartbeat.decode(beat.encode()) == beat


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"hello world",
        b"IPM\x02\x00\x00\x00\x02{}",
        b"IPM\x01\x00\x00\x00\x05[1,2]",
        b"IPM\x01\x00\x00\x00\x03{x}",
        pack({"kind": "task", "job": "j"}),
        pack({"kind": "result"}),
    ],
)
def test_malformed_messages_raise_message_error(value):
    with pytest.raises(MessageError):
        Task.decode(value)


def test_a_message_of_another_kind_is_refused():
    beat = Heartbeat(worker="w", host="h", pid=1, tiles_done=0).encode()
    with pytest.raises(MessageError, match="expected a task"):
        Task.decode(beat)


@pytest.mark.parametrize(
    "header,reason",
    [
        ({"index": -1}, "index"),
        ({"index": "3"}, "index"),
        ({"task_offset": True}, "task_offset"),
        ({"stats": [1, -2]}, "stats"),
        ({"job": "../../etc"}, "not a job id"),
    ],
)
def test_well_formed_envelopes_with_wrong_values_are_refused(header, reason):
    fields = {
        "kind": "result",
        "job": JOB,
        "index": 1,
        "worker": "w",
        "duration_ms": 1,
        "task_partition": 0,
        "task_offset": 0,
        **header,
    }
    with pytest.raises(MessageError, match=reason):
        Result.decode(pack(fields))


def test_a_heartbeat_with_a_negative_pid_is_refused():
    with pytest.raises(MessageError, match="pid"):
        Heartbeat.decode(pack({"kind": "heartbeat", "worker": "w", "host": "h", "pid": -1, "tiles_done": 0}))


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_message_error_only(value):
    for cls in (Task, Result, Heartbeat):
        try:
            cls.decode(value)
        except MessageError:
            pass


@given(st.sampled_from([Task, Result, Heartbeat]).flatmap(lambda cls: st.tuples(st.just(cls), headers(cls))))
def test_any_json_header_decodes_to_storable_values_or_raises_message_error_only(case):
    cls, header = case
    try:
        message = cls.decode(pack(header))
    except MessageError:
        return
    message = message[0] if isinstance(message, tuple) else message
    for name, value in vars(message).items():
        if isinstance(value, str):
            assert "\x00" not in value and len(value) <= 10_000 and value.encode(), name
        if isinstance(value, int) and not isinstance(value, bool):
            assert 0 <= value < 2**63, name


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("cls", [Task, Result, Heartbeat])
def test_a_header_nested_deeper_than_json_can_parse_is_malformed(cls, depth):
    body = b"[" * depth + b"]" * depth
    with pytest.raises(MessageError, match="bad message header"):
        cls.decode(b"IPM\x01" + len(body).to_bytes(4, "big") + body)


@pytest.mark.parametrize(
    "values,field",
    [
        ({"pid": 2**31}, "pid"),
        ({"worker": "w" * 300}, "worker"),
        ({"host": "a\x00b"}, "host"),
        ({"host": "\ud800"}, "host"),
        ({"tiles_done": 10**40}, "tiles_done"),
        ({"current_job": "j" * 65}, "current_job"),
        ({"current_job": "j1"}, "current_job"),
        ({"counters": {"a\x00": 1}}, "counters"),
    ],
)
def test_heartbeat_values_the_database_cannot_store_are_refused(values, field):
    header = {"kind": "heartbeat", "worker": "w", "host": "h", "pid": 1, "tiles_done": 0, **values}
    with pytest.raises(MessageError, match=field):
        Heartbeat.decode(pack(header))


@pytest.mark.parametrize(
    "raw",
    [b'{"kind":"task","index":NaN}', b'{"kind":"task","index":Infinity}', b'{"n":' + b"9" * 5000 + b"}"],
)
def test_non_numbers_and_huge_integers_in_a_header_are_malformed(raw):
    with pytest.raises(MessageError, match="bad message header"):
        Task.decode(b"IPM\x01" + len(raw).to_bytes(4, "big") + raw)


def test_a_header_longer_than_the_limit_is_refused_unread():
    with pytest.raises(MessageError, match="over"):
        Task.decode(b"IPM\x01\xff\xff\xff\xff{}")


def test_a_job_id_is_stored_in_one_spelling():
    result = Result(
        job=JOB.replace("-", "").upper(), index=1, worker="w", duration_ms=5, task_partition=0, task_offset=0
    )
    assert Result.decode(result.encode())[0].job == JOB


@given(st.one_of(st.none(), st.binary(max_size=40)), st.one_of(st.none(), st.binary(max_size=20)))
def test_any_cancellation_record_decodes_or_raises_message_error_only(key, value):
    try:
        Cancellation.decode(key, value)
    except MessageError:
        pass


@pytest.mark.parametrize("key", [b"\xff\xfe", b"", None, b"not-a-job"])
def test_a_cancellation_keyed_by_anything_but_a_job_id_is_malformed(key):
    with pytest.raises(MessageError, match="not a job id"):
        Cancellation.decode(key, b"0")


@pytest.mark.parametrize("value,generation", [(b"3", 3), (b"cancelled", 0), (None, None)])
def test_a_cancellation_names_the_generation_it_covers(value, generation):
    assert Cancellation.decode(JOB.encode(), value) == Cancellation(JOB, generation)


@pytest.mark.parametrize("value", [b"-1", b"1e9", b"99999999999", b"\x00"])
def test_a_cancellation_without_a_generation_is_malformed(value):
    with pytest.raises(MessageError, match="no generation"):
        Cancellation.decode(JOB.encode(), value)

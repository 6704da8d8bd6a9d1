import pytest

from imagepipe.core.messages import Heartbeat, MessageError, Result, Task, pack

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

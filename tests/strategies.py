"""Hypothesis strategies for what arrives from Kafka: any bytes, any JSON, envelopes of any shape."""

from __future__ import annotations

from dataclasses import fields

from hypothesis import strategies as st

from pipeline.messages import Heartbeat, Result, Task, pack

# Integers around every boundary a column or a check has, and far past them.
integers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([-1, 0, 1, 2**15, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**40]),
)
texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["", "\x00", "a\x00b", "\ud800", "x" * 256, "x" * 300, "6d1f3c52-1b7e-4f1e-9a55-0a4f5d5c2b11"]
    ),
)
scalars = st.none() | st.booleans() | integers | st.floats(allow_nan=False, allow_infinity=False) | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
)

KINDS = {Task: "task", Result: "result", Heartbeat: "heartbeat"}


def headers(cls, **known) -> st.SearchStrategy[dict]:
    """A header with the message's own field names (some missing), each holding any JSON value.

    ``known`` pins fields to strategies of their own (a real job id, say), so examples reach
    past decoding into the steps that use them.
    """
    names = [spec.name for spec in fields(cls)]
    return st.fixed_dictionaries(
        {"kind": st.just(KINDS[cls]) | texts, **{n: known[n] for n in known}},
        optional={n: json_values for n in names if n not in known},
    )


def envelopes(cls, **known) -> st.SearchStrategy[bytes]:
    """Whole message values: mostly envelopes of ``cls`` with any values, sometimes any bytes."""
    framed = st.builds(pack, headers(cls, **known), st.binary(max_size=64))
    return st.one_of(framed, framed, st.binary(max_size=200))

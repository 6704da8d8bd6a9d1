"""The websocket's messages as a job's page gets them: listening to a job's group, and reading a
snapshot."""

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer


def listening(group: str) -> str:
    """A channel of the real channel layer, in the group a job's sockets are in."""
    layer = default_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return channel


def next_message(channel: str) -> dict:
    async def receive():
        return await asyncio.wait_for(default_layer().receive(channel), timeout=10)

    return async_to_sync(receive)()


def default_layer() -> BaseChannelLayer:
    layer = get_channel_layer()
    assert layer is not None, "settings.CHANNEL_LAYERS has a default layer"
    return layer


def done_rows(snapshot: dict) -> list[list]:
    """A snapshot's rows of tiles done (it has every tile, each with its state)."""
    state = snapshot["tile_fields"].index("state")
    return [row for row in snapshot["tiles"] if snapshot["tile_states"][row[state]] == "done"]

"""Reading the websocket's snapshot as a client does."""


def done_rows(snapshot: dict) -> list[list]:
    """A snapshot's rows of tiles done (it has every tile, each with its state)."""
    state = snapshot["tile_fields"].index("state")
    return [row for row in snapshot["tiles"] if snapshot["tile_states"][row[state]] == "done"]

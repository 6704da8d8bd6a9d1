"""The cache's values as JSON, never pickles.

Django's Redis cache unpickles whatever it reads, so whoever can write to Redis could run code in
every web process (the login throttle reads the cache on every login). Here a value is a JSON
document, or a bare integer as Django writes it (so that INCR works on it), and anything else
read back is a miss: at worst a planted value changes a count.
"""

from __future__ import annotations

import json
from typing import Any


class JSONSerializer:
    def dumps(self, value: Any) -> bytes | int:
        if type(value) is int:  # not bool: True would come back as 1
            return value
        return json.dumps(value, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        try:
            return int(data)
        except ValueError:
            pass
        try:
            return json.loads(data)
        except ValueError:  # not JSON (a pickle, say): nothing this project wrote
            return None

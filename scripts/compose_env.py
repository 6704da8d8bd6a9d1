"""Print compose.env.example with every empty value filled with a fresh random secret:

    python3 scripts/compose_env.py > .env

Hexadecimal digits only: a secret then stands in a URL (DATABASE_URL), in Kafka's SCRAM syntax
and on a command line (never taken for an option) as it is. Standard library only: it runs
before anything is installed.
"""

from __future__ import annotations

import re
import secrets
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "compose.env.example"
EMPTY = re.compile(r"^([A-Z][A-Z0-9_]*)=$")
LENGTH = 64  # 256 bits
# MinIO refuses secret keys longer than 40 characters: 160 bits.
LONGEST = {"MINIO_ROOT_PASSWORD": 40, "S3_SECRET_ACCESS_KEY": 40}


def filled(text: str) -> str:
    lines = []
    for line in text.splitlines():
        match = EMPTY.match(line)
        if match:
            line += secrets.token_hex(LENGTH)[: LONGEST.get(match.group(1), LENGTH)]
        lines.append(line)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(filled(EXAMPLE.read_text()))

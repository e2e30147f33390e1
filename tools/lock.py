"""Write ``requirements.lock`` from a ``pip install --dry-run --report`` resolution.

``make lock`` resolves fondasi's ranges (every extra) into exact versions with pip's own
resolver and calls this to write them as a constraints file, which ``make demo`` and
``make test`` install from. Packages the Makefile installs on their own are appended.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HEADER = """\
# The exact versions `make demo` and `make test` install, as pip constraints (-c).
# pyproject.toml holds the ranges fondasi works with; `make lock` re-resolves them into this file.
# Generated; do not edit by hand.
"""


def main(report: str, out: str, *extra: str) -> None:
    """Read pip's installation report; write one ``name==version`` a line, sorted."""
    resolved = json.loads(Path(report).read_text(encoding="utf-8"))
    pins = {
        item["metadata"][
            "name"
        ].lower(): f"{item['metadata']['name']}=={item['metadata']['version']}"
        for item in resolved["install"]
        if item["metadata"]["name"].lower() != "fondasi"
    }
    for pin in extra:  # name==version, installed by the Makefile outside the resolution
        pins[pin.split("==")[0].lower()] = pin
    lines = [pins[name] for name in sorted(pins)]
    Path(out).write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} pins to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])

"""Edit a saved artifact's JSON as a careless writer would, and seal it again (manifest updated),
so a test reaches the semantic checks behind the checksum."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xsteer.io import manifest_name, sha256_bytes


def edit_json(path: Path, fn: Callable[[dict[str, Any]], Any]) -> None:
    """Apply ``fn`` to the JSON at ``path`` and record the new bytes in the artifact's manifest."""
    meta = json.loads(path.read_text())
    fn(meta)
    data = json.dumps(meta).encode()
    path.write_bytes(data)
    manifest_path = path.parent / manifest_name(path.name.removesuffix(".json"))
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][path.name] = sha256_bytes(data)
    manifest_path.write_text(json.dumps(manifest))

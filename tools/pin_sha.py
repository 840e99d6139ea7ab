#!/usr/bin/env python3
"""Pin the module's sha256 in the Istio examples.

Rewrites every `sha256: <64 hex digits>` line of DIR/*.yaml (the https://
WasmPlugin/TrafficExtension examples) to the sha256 of WASM, keeping the
indentation, quotes and trailing comments. tests/oci.rs fails while they
differ from dist/meshprobe.wasm.

Usage: pin_sha.py WASM DIR
"""

import hashlib
import re
import sys
from pathlib import Path

LINE = re.compile(r'^(?P<head>[ \t]*(?:- )?sha256:[ \t]*)(?P<q>["\']?)[0-9a-f]{64}(?P=q)(?P<tail>[ \t]*(?:#.*)?)$', re.M)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    wasm, root = Path(sys.argv[1]), Path(sys.argv[2])
    if not wasm.is_file():
        sys.exit(f"pin_sha: {wasm} is missing: run `just build`")
    sha = hashlib.sha256(wasm.read_bytes()).hexdigest()
    pinned = 0
    for path in sorted(root.glob("*.yaml")):
        text = path.read_text()
        new, n = LINE.subn(lambda m: f"{m['head']}{m['q']}{sha}{m['q']}{m['tail']}", text)
        pinned += n
        if new != text:
            path.write_text(new)
            print(f"{path}: pinned {n} sha256 to {sha}")
        elif n:
            print(f"{path}: {n} sha256 already {sha}")
    if pinned == 0:
        sys.exit(f"pin_sha: no `sha256: <hex>` line in {root}/*.yaml")


if __name__ == "__main__":
    main()

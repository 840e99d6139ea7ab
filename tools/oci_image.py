#!/usr/bin/env python3
"""Package meshprobe.wasm as an OCI image that Istio can pull, without Docker.

Writes an OCI image layout directory (oci-layout, index.json,
blobs/sha256/<digest>) holding one image in the Wasm artifact format
("oci" variant of the Wasm image spec, github.com/solo-io/wasm/spec):

  manifest  application/vnd.oci.image.manifest.v1+json
  config    application/vnd.module.wasm.config.v1+json      runtime config (JSON)
  layer 0   application/vnd.module.wasm.config.v1+json      the same runtime config
  layer 1   application/vnd.module.wasm.content.layer.v1+wasm  the module, raw bytes

Istio's image fetcher (pkg/wasm/imagefetcher.go) accepts an image with
exactly two layers in this variant and takes the module from the layer of
type application/vnd.module.wasm.content.layer.v1+wasm, so the runtime
config is both the manifest's config and the first layer, as the spec and
Istio's own tests have it. The module layer is not compressed: its digest
is the module's sha256, the value an https:// WasmPlugin pins.

The output is reproducible: no timestamps, canonical JSON, so the manifest
digest depends only on the module and the tags' content.

Push it with skopeo (no daemon either):
  skopeo copy oci:dist/oci:<tag> docker://<registry>/<repo>/meshprobe:<tag>

Usage: oci_image.py WASM OUT_DIR [--tag TAG]...   (default tag: Cargo.toml's version)
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.module.wasm.config.v1+json"
WASM_MEDIA_TYPE = "application/vnd.module.wasm.content.layer.v1+wasm"
ROOT_ID = "meshprobe"


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def cargo_version(repo: Path) -> str:
    text = (repo / "Cargo.toml").read_text()
    package = text.split("[package]", 1)[1].split("\n[", 1)[0]
    m = re.search(r'^version\s*=\s*"([^"]+)"', package, re.M)
    if not m:
        sys.exit("oci_image: no [package] version in Cargo.toml")
    return m.group(1)


def abi_versions(module: bytes) -> list:
    """The proxy-wasm ABI versions the module exports (proxy_abi_version_0_2_1, ...)."""
    found = sorted(set(m.decode() for m in re.findall(rb"proxy_abi_version_[0-9_]*[0-9]", module)))
    if not found:
        sys.exit("oci_image: no proxy_abi_version_* export: not a proxy-wasm module")
    return found


class Layout:
    def __init__(self, root: Path):
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)

    def blob(self, data: bytes, media_type: str, annotations=None) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest).write_bytes(data)
        desc = {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}
        if annotations:
            desc["annotations"] = annotations
        return desc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("wasm", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--tag", action="append", default=[], help="may repeat; empty = Cargo.toml version")
    args = parser.parse_args()

    repo = Path(__file__).resolve().parent.parent
    tags = [t for t in args.tag if t] or [cargo_version(repo)]
    for tag in tags:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", tag):
            sys.exit(f"oci_image: {tag!r} is not a valid image tag")

    if not args.wasm.is_file():
        sys.exit(f"oci_image: {args.wasm} is missing: run `just build`")
    module = args.wasm.read_bytes()
    if module[:4] != b"\0asm":
        sys.exit(f"oci_image: {args.wasm} is not a WebAssembly module")

    out = args.out
    if out.exists() and any(out.iterdir()) and not (out / "oci-layout").is_file():
        sys.exit(f"oci_image: {out} exists and is not an OCI layout; not overwriting it")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    layout = Layout(tmp)

    runtime_config = canonical(
        {"type": "envoy_proxy", "abiVersions": abi_versions(module), "config": {"rootIds": [ROOT_ID]}}
    )
    config = layout.blob(runtime_config, CONFIG_MEDIA_TYPE)
    layers = [
        layout.blob(runtime_config, CONFIG_MEDIA_TYPE, {"org.opencontainers.image.title": "runtime-config.json"}),
        layout.blob(module, WASM_MEDIA_TYPE, {"org.opencontainers.image.title": "plugin.wasm"}),
    ]
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config,
            "layers": layers,
            "annotations": {
                "org.opencontainers.image.title": "meshprobe",
                "org.opencontainers.image.description": "meshprobe proxy-wasm HTTP filter for Envoy and Istio",
            },
        }
    )
    manifest_desc = layout.blob(manifest, MANIFEST_MEDIA_TYPE)
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            dict(manifest_desc, annotations={"org.opencontainers.image.ref.name": tag}) for tag in tags
        ],
    }
    (tmp / "index.json").write_bytes(canonical(index))
    (tmp / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))

    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)

    print(f"{out}: OCI image layout, tags {', '.join(tags)}")
    print(f"  module sha256    {layers[1]['digest'][len('sha256:'):]}  ({len(module)} bytes)")
    print(f"  manifest digest  {manifest_desc['digest']}")
    print(f"  push: skopeo copy oci:{out}:{tags[0]} docker://<registry>/<repo>/meshprobe:{tags[0]}")


if __name__ == "__main__":
    main()

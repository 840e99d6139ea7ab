#!/usr/bin/env python3
"""Remove the proxy-wasm callbacks meshprobe never needs from the module.

    python3 tools/strip_exports.py IN.wasm OUT.wasm [SRC_HOST_DIR]

The Rust SDK (proxy-wasm 0.2) exports every callback of the ABI, and Envoy
enters the VM for each exported one: `proxy_on_log` and `proxy_on_done`
for every stream, `proxy_on_response_headers` and `proxy_on_response_body`
for every response through the filter. Envoy (proxy-wasm-cpp-host,
WasmBase::getFunctions and ContextBase::on*) looks every callback up and,
for one the module does not export, does what the SDK's default does
anyway:

- proxy_on_done: missing => the context is done (`return true`), the SDK's
  default `on_done` answer; meshprobe implements no `on_done`.
- proxy_on_log, proxy_on_foreign_function,
  proxy_on_grpc_receive_initial_metadata / _trailing_metadata (the SDK only
  routes those to gRPC *streams*, which meshprobe never opens),
  proxy_on_downstream/upstream_connection_close: missing => not called;
  the SDK's defaults do nothing.
- proxy_on_request_trailers, proxy_on_response_headers,
  proxy_on_response_body, proxy_on_response_trailers, proxy_on_new_connection,
  proxy_on_downstream_data, proxy_on_upstream_data: missing => Continue,
  the SDK's default answer.

Never removed: proxy_on_delete (without it the SDK never drops a stream's
context: a leak, and no Drop), proxy_on_memory_allocate, and every
callback meshprobe implements. wasm-opt then drops the dead dispatcher
code. As a guard, the script refuses when SRC_HOST_DIR implements the trait
method behind an export it would remove.
"""

import pathlib
import re
import sys

# export -> the SDK trait method that would handle it
REMOVABLE = {
    "proxy_on_done": "on_done",
    "proxy_on_log": "on_log",
    "proxy_on_foreign_function": "on_foreign_function",
    "proxy_on_grpc_receive_initial_metadata": "on_grpc_stream_initial_metadata",
    "proxy_on_grpc_receive_trailing_metadata": "on_grpc_stream_trailing_metadata",
    "proxy_on_downstream_connection_close": "on_downstream_close",
    "proxy_on_upstream_connection_close": "on_upstream_close",
    "proxy_on_new_connection": "on_new_connection",
    "proxy_on_downstream_data": "on_downstream_data",
    "proxy_on_upstream_data": "on_upstream_data",
    "proxy_on_request_trailers": "on_http_request_trailers",
    "proxy_on_response_headers": "on_http_response_headers",
    "proxy_on_response_body": "on_http_response_body",
    "proxy_on_response_trailers": "on_http_response_trailers",
}


def leb(data, pos):
    """Unsigned LEB128 at pos: (value, next pos)."""
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def enc(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def strip(module):
    if module[:8] != b"\0asm\1\0\0\0":
        raise SystemExit("not a wasm module")
    out = bytearray(module[:8])
    pos, removed = 8, []
    while pos < len(module):
        sid = module[pos]
        size, body = leb(module, pos + 1)
        end = body + size
        if sid == 7:  # export section
            count, p = leb(module, body)
            kept = bytearray()
            n = 0
            for _ in range(count):
                start = p
                length, p = leb(module, p)
                name = module[p : p + length].decode()
                p += length + 1  # name, kind
                _, p = leb(module, p)  # index
                if name in REMOVABLE:
                    removed.append(name)
                else:
                    kept += module[start:p]
                    n += 1
            section = enc(n) + bytes(kept)
            out += bytes([7]) + enc(len(section)) + section
        else:
            out += module[pos:end]
        pos = end
    return bytes(out), removed


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__.split("\n\n")[1])
    if len(sys.argv) == 4:
        source = "\n".join(
            p.read_text() for p in sorted(pathlib.Path(sys.argv[3]).rglob("*.rs"))
        )
        used = [m for m in REMOVABLE.values() if re.search(rf"\bfn {m}\b", source)]
        if used:
            raise SystemExit(
                f"strip_exports: src/host implements {', '.join(used)}: "
                "its export must stay (update REMOVABLE in tools/strip_exports.py)"
            )
    data, removed = strip(pathlib.Path(sys.argv[1]).read_bytes())
    pathlib.Path(sys.argv[2]).write_bytes(data)
    print(f"strip_exports: removed {len(removed)} unused exports")


if __name__ == "__main__":
    main()

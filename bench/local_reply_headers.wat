;; Floor (e): the smallest Wasm local reply (floor (d), bench/local_reply.wat)
;; with the body and headers meshprobe sends on a liveness answer:
;; "ok\n" and the five headers below, serialized as the proxy-wasm ABI (and
;; the Rust SDK's serialize_map) does: a u32 count, a (u32 name size, u32
;; value size) per header, then each name and value NUL-terminated (all
;; little-endian). bench.py checks at run time that this floor's answer and
;; meshprobe's liveness answer carry the same headers.
(module
  (import "env" "proxy_send_local_response"
    (func $send (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "ok\0a")
  (data (i32.const 1040)
    "\05\00\00\00"                                  ;; 5 headers
    "\0c\00\00\00" "\19\00\00\00"                   ;; content-type (12), 25
    "\0d\00\00\00" "\08\00\00\00"                   ;; cache-control (13), 8
    "\04\00\00\00" "\06\00\00\00"                   ;; vary (4), 6
    "\16\00\00\00" "\07\00\00\00"                   ;; x-content-type-options (22), 7
    "\0b\00\00\00" "\05\00\00\00"                   ;; x-meshprobe (11), 5
    "content-type\00" "text/plain; charset=utf-8\00"
    "cache-control\00" "no-store\00"
    "vary\00" "Accept\00"
    "x-content-type-options\00" "nosniff\00"
    "x-meshprobe\00" "probe\00")
  (func (export "_initialize"))
  (func (export "proxy_abi_version_0_2_1"))
  ;; Never called: nothing here reads from the host.
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 65536))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    ;; status, details (none), body (3 bytes), headers (167 bytes), grpc status (-1: none).
    (drop (call $send (i32.const 200) (i32.const 0) (i32.const 0)
      (i32.const 1024) (i32.const 3) (i32.const 1040) (i32.const 167) (i32.const -1)))
    (i32.const 1))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32)))

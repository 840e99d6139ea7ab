;; Floor (f): everything a probe answer of a filter built on the Rust SDK
;; cannot avoid, together: the exports of floor (b), the `:path` read of
;; floor (c) and the local reply with meshprobe's body and headers of floor
;; (e). meshprobe's liveness over this floor is meshprobe's own logic.
(module
  (import "env" "proxy_get_header_map_value"
    (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response"
    (func $send (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) ":path")
  ;; 1032: where the host writes the value's address, 1036: its size.
  (data (i32.const 2048) "ok\0a")
  (data (i32.const 2064)
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
  ;; The host copies the value into memory it asks for here: one scratch area
  ;; from 64 KiB on, reused by every call (grown if ever too small).
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $pages i32)
    (local.set $pages (i32.shr_u (i32.add (i32.add (local.get $size) (i32.const 65536)) (i32.const 65535)) (i32.const 16)))
    (if (i32.lt_u (memory.size) (local.get $pages))
      (then (drop (memory.grow (i32.sub (local.get $pages) (memory.size))))))
    (i32.const 65536))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_tick") (param i32))
  (func (export "proxy_on_queue_ready") (param i32 i32))
  (func (export "proxy_on_foreign_function") (param i32 i32 i32))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_new_connection") (param i32) (result i32) (i32.const 0))
  (func (export "proxy_on_downstream_data") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_downstream_connection_close") (param i32 i32))
  (func (export "proxy_on_upstream_data") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_upstream_connection_close") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    ;; map type 0: the request headers.
    (drop (call $get_header (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 1032) (i32.const 1036)))
    (drop (call $send (i32.const 200) (i32.const 0) (i32.const 0)
      (i32.const 2048) (i32.const 3) (i32.const 2064) (i32.const 167) (i32.const -1)))
    (i32.const 1))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_request_trailers") (param i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_trailers") (param i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32))
  (func (export "proxy_on_grpc_receive_initial_metadata") (param i32 i32 i32))
  (func (export "proxy_on_grpc_receive") (param i32 i32 i32))
  (func (export "proxy_on_grpc_receive_trailing_metadata") (param i32 i32 i32))
  (func (export "proxy_on_grpc_close") (param i32 i32 i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32)))

;; Floor (g): meshprobe's own traffic with the host, with none of its
;; logic. The same exports as dist/meshprobe.wasm (so Envoy enters the VM
;; as often); every request header read in one call
;; (`proxy_get_header_map_pairs`, into a scratch area: no allocator); the
;; liveness answer of floor (e); a tick every 20 ms that reads the clock
;; (what meshprobe's tick does when it has nothing to do). Floor (h), for
;; app traffic, is this module without the answer: cpu.py drops the line
;; marked `answer` and continues the request instead. meshprobe over (g)
;; and (h) is meshprobe's logic: the code in the VM and what it asks of the
;; host beyond these calls.
(module
  (import "env" "proxy_get_header_map_pairs"
    (func $pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response"
    (func $send (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds"
    (func $tick_period (param i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds"
    (func $now (param i32) (result i32)))
  (memory (export "memory") 2)
  ;; 1032: where the host writes the map's address, 1036: its size;
  ;; 1040: the clock.
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
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $pages i32)
    (local.set $pages (i32.shr_u (i32.add (i32.add (local.get $size) (i32.const 65536)) (i32.const 65535)) (i32.const 16)))
    (if (i32.lt_u (memory.size) (local.get $pages))
      (then (drop (memory.grow (i32.sub (local.get $pages) (memory.size))))))
    (i32.const 65536))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $tick_period (i32.const 20)))
    (i32.const 1))
  (func (export "proxy_on_tick") (param i32)
    (drop (call $now (i32.const 1040))))
  (func (export "proxy_on_queue_ready") (param i32 i32))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    ;; map type 0: the request headers.
    (drop (call $pairs (i32.const 0) (i32.const 1032) (i32.const 1036)))
    (drop (call $send (i32.const 200) (i32.const 0) (i32.const 0) (i32.const 2048) (i32.const 3) (i32.const 2064) (i32.const 167) (i32.const -1))) ;; answer
    (i32.const 1)) ;; answer: paused (h: 0, continue)
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32))
  (func (export "proxy_on_grpc_receive") (param i32 i32 i32))
  (func (export "proxy_on_grpc_close") (param i32 i32 i32))
  (func (export "proxy_on_delete") (param i32)))

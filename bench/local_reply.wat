;; Floor (d): the smallest Wasm local reply. The exports of bench/noop.wat;
;; proxy_on_request_headers answers every request itself with
;; proxy_send_local_response(200, body "ok", no extra header) and returns
;; "pause" (1), as the Rust SDK's filters do after a local reply.
(module
  (import "env" "proxy_send_local_response"
    (func $send (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "ok")
  ;; An empty header map in the proxy-wasm format: a u32 count of 0.
  (data (i32.const 1040) "\00\00\00\00")
  (func (export "_initialize"))
  (func (export "proxy_abi_version_0_2_1"))
  ;; Never called: nothing here reads from the host.
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 65536))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    ;; status, details (none), body, headers, grpc status (-1: none).
    (drop (call $send (i32.const 200) (i32.const 0) (i32.const 0)
      (i32.const 1024) (i32.const 2) (i32.const 1040) (i32.const 4) (i32.const -1)))
    (i32.const 1))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32)))

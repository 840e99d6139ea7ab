"""Real gRPC servers and a real gRPC health client for meshprobe's tests.

Server: python grpc_health_server.py serve <kind>
  kinds: health   grpc.health.v1 (grpcio-health-checking), overall "" SERVING
         nohealth a gRPC server without the health service
         reset    a TCP server that reads the request and resets the connection
  Listens on 127.0.0.1, ephemeral port; prints "PORT <n>" when ready. Then
  reads commands on stdin, one a line, and answers "OK" (or "ERR ...") on
  stdout:
    set <service|-> <SERVING|NOT_SERVING|UNKNOWN>   ("-" is the empty service)
    hang on|off                                     Check waits (until off)
    hits                                            Check calls seen so far
  Exits when stdin closes.

Client: python grpc_health_server.py check <host:port> <service|-> [key=value ...]
  One grpc.health.v1.Health/Check over h2c (what the kubelet's grpc probe
  sends); prints "SERVING" (or the status name) or "ERROR <CODE>: <details>".
Client: python grpc_health_server.py watch <host:port> <service|->
  The first answer of a grpc.health.v1.Health/Watch stream.
"""

import socket
import sys
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

STATUS = health_pb2.HealthCheckResponse.ServingStatus


class Health(health.HealthServicer):
    def __init__(self):
        super().__init__()
        self.hang = threading.Event()
        self.release = threading.Event()
        self.hits = 0
        self.lock = threading.Lock()

    def Check(self, request, context):
        with self.lock:
            self.hits += 1
        if self.hang.is_set():
            self.release.wait(60)
        return super().Check(request, context)


def serve_grpc(with_health):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    servicer = None
    if with_health:
        servicer = Health()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        servicer.set("", STATUS.Value("SERVING"))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, servicer, port


def serve_reset():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def loop():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                conn.settimeout(2)
                conn.recv(65536)
            except OSError:
                pass
            # SO_LINGER 0: close with a RST.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

    threading.Thread(target=loop, daemon=True).start()
    return listener, listener.getsockname()[1]


def commands(servicer):
    for line in sys.stdin:
        words = line.split()
        try:
            if not words:
                continue
            if words[0] == "set" and servicer and len(words) == 3:
                service = "" if words[1] == "-" else words[1]
                servicer.set(service, STATUS.Value(words[2]))
                print("OK", flush=True)
            elif words[0] == "hang" and servicer and len(words) == 2:
                if words[1] == "on":
                    servicer.release.clear()
                    servicer.hang.set()
                else:
                    servicer.hang.clear()
                    servicer.release.set()
                print("OK", flush=True)
            elif words[0] == "hits" and servicer:
                print("OK %d" % servicer.hits, flush=True)
            else:
                print("ERR unknown command", flush=True)
        except Exception as e:  # an answer for every command
            print("ERR %s" % e, flush=True)


def serve(kind):
    if kind == "reset":
        listener, port = serve_reset()
        print("PORT %d" % port, flush=True)
        commands(None)
        listener.close()
        return
    server, servicer, port = serve_grpc(kind == "health")
    print("PORT %d" % port, flush=True)
    commands(servicer)
    if servicer:
        servicer.release.set()
    server.stop(0)


def check(target, service, pairs):
    metadata = tuple(tuple(p.split("=", 1)) for p in pairs)
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="" if service == "-" else service)
        try:
            answer = stub.Check(request, timeout=5, metadata=metadata or None)
            print(STATUS.Name(answer.status))
        except grpc.RpcError as e:
            print("ERROR %s: %s" % (e.code().name, e.details()))


def watch(target, service):
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="" if service == "-" else service)
        try:
            for answer in stub.Watch(request, timeout=5):
                print(STATUS.Name(answer.status))
                return
        except grpc.RpcError as e:
            print("ERROR %s: %s" % (e.code().name, e.details()))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "watch":
        watch(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)

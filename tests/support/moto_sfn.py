"""A moto server whose Step Functions run the real lexpipe Lambda binaries.

Started by the conformance test (functions/tests/conformance.rs), never by hand:

    python moto_sfn.py --port PORT --logs DIR name=/path/to/bootstrap [name=/path ...]

moto 5.2 executes state machines when its `stepfunctions.execute_state_machine` setting is
on. A Task on a Lambda ARN makes moto call its own Lambda API (`Invoke`), which, with
`lambda.use_docker` off, is `LambdaSimpleBackend.invoke`. This file replaces that method:
the invocation goes to the function binary named by the ARN, unchanged, through a local
implementation of the Lambda Runtime API (the HTTP interface `lambda_runtime` talks to:
`/2018-06-01/runtime/invocation/next`, `.../{id}/response`, `.../{id}/error`), one per
function, with as many warm processes as concurrent invocations need. A handler error comes
back to moto as Lambda does it (`X-Amz-Function-Error: Unhandled` and the
`{"errorType", "errorMessage"}` payload), so `Retry`/`Catch` see the error's name.

Every process inherits this process's environment (the test sets the configuration the
functions read: Redis, PostgreSQL, the S3 endpoint) plus the variables Lambda sets. Each
function's stdout and stderr go to DIR/<name>.log. The server stops when stdin closes, so a
test that dies takes it along.
"""

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# How long one invocation may run, as the function's Timeout in the SAM template.
INVOCATION_TIMEOUT_S = 120
# Most concurrent processes of one function (a Map state's MaxConcurrency is below this).
MAX_PROCESSES = 8
REGION = os.environ.get("AWS_REGION", "us-east-1")


class Invocation:
    def __init__(self, payload: bytes):
        self.id = str(uuid.uuid4())
        self.payload = payload
        self.done = threading.Event()
        self.result: bytes = b""
        self.error = False


class Function:
    """One function: its Runtime API server, its queue of invocations, its processes."""

    def __init__(self, name: str, binary: str, log_dir: str):
        self.name = name
        self.binary = binary
        self.pending: "queue.Queue[Invocation]" = queue.Queue()
        self.in_flight: dict[str, Invocation] = {}
        self.lock = threading.Lock()
        self.waiting = 0  # processes blocked in /next
        self.processes: list[subprocess.Popen] = []
        self.log = open(os.path.join(log_dir, f"{name}.log"), "ab", buffering=0)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        fn = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body: bytes = b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    return self._reply(404)
                with fn.lock:
                    fn.waiting += 1
                try:
                    inv = fn.pending.get()
                finally:
                    with fn.lock:
                        fn.waiting -= 1
                with fn.lock:
                    fn.in_flight[inv.id] = inv
                deadline_ms = int((time.time() + INVOCATION_TIMEOUT_S) * 1000)
                arn = f"arn:aws:lambda:{REGION}:123456789012:function:{fn.name}"
                self._reply(
                    200,
                    inv.payload,
                    {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": inv.id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": arn,
                        "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
                    },
                )

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = self.path.split("/")
                # /2018-06-01/runtime/invocation/{id}/response|error, /runtime/init/error
                if len(parts) >= 6 and parts[3] == "invocation":
                    with fn.lock:
                        inv = fn.in_flight.pop(parts[4], None)
                    if inv is None:
                        return self._reply(404)
                    inv.error = parts[5] == "error"
                    inv.result = body
                    inv.done.set()
                    return self._reply(202, b'{"status":"OK"}')
                if self.path.endswith("/runtime/init/error"):
                    fn.log.write(b"init error: " + body + b"\n")
                    return self._reply(202, b'{"status":"OK"}')
                return self._reply(404)

        return Handler

    def _spawn(self):
        env = dict(os.environ)
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.server.server_address[1]}",
                "AWS_LAMBDA_FUNCTION_NAME": self.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{uuid.uuid4().hex}",
                "AWS_REGION": REGION,
            }
        )
        # The functions' AWS clients (S3, Step Functions) talk to this moto.
        env.setdefault("AWS_ENDPOINT_URL", f"http://localhost:{os.environ['MOTO_PORT']}")
        p = subprocess.Popen(
            [self.binary],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )
        self.processes.append(p)

    def invoke(self, payload: bytes) -> tuple[bytes, bool]:
        inv = Invocation(payload)
        with self.lock:
            self.processes = [p for p in self.processes if p.poll() is None]
            # Another process when every idle one is already promised an invocation.
            if self.waiting <= self.pending.qsize() and len(self.processes) < MAX_PROCESSES:
                self._spawn()
        self.pending.put(inv)
        deadline = time.time() + INVOCATION_TIMEOUT_S
        while not inv.done.wait(0.2):
            with self.lock:
                alive = [p for p in self.processes if p.poll() is None]
            if not alive:
                return (
                    json.dumps(
                        {
                            "errorType": "Runtime.ExitError",
                            "errorMessage": f"{self.name} exited before answering (see its log)",
                        }
                    ).encode(),
                    True,
                )
            if time.time() > deadline:
                return (
                    json.dumps(
                        {
                            "errorType": "States.Timeout",
                            "errorMessage": f"{self.name} did not answer within {INVOCATION_TIMEOUT_S} s",
                        }
                    ).encode(),
                    True,
                )
        return inv.result, inv.error

    def stop(self):
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
        for p in self.processes:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        self.server.shutdown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--logs", required=True)
    ap.add_argument("functions", nargs="+", help="name=/path/to/binary")
    args = ap.parse_args()

    # moto's Step Functions engine calls moto's own Lambda API on this port.
    os.environ["MOTO_PORT"] = str(args.port)
    functions = {}
    for spec in args.functions:
        name, _, path = spec.partition("=")
        functions[name] = Function(name, path, args.logs)

    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.models import default_user_config
    from moto.server import ThreadedMotoServer

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        # The name arrives as the Task's ARN (…:function:NAME) or as the bare name.
        name = function_name.rsplit(":function:", 1)[-1].split(":")[0]
        fn = functions.get(name)
        if fn is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {"errorType": "ResourceNotFoundException", "errorMessage": f"no function {name}"}
            ).encode()
        payload = body if isinstance(body, bytes) else (body or "{}").encode()
        result, error = fn.invoke(payload)
        if error:
            response_headers["x-amz-function-error"] = "Unhandled"
        return result

    LambdaSimpleBackend.invoke = invoke
    default_user_config.setdefault("lambda", {})["use_docker"] = False
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    print(f"ready {args.port}", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin (or dies)
    finally:
        for fn in functions.values():
            fn.stop()
        server.stop()


if __name__ == "__main__":
    main()

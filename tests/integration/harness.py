"""Shared harness for the integration tests: start the real binaries on
loopback, talk HTTP to them, and report in TAP.

Every test module ends with ``if __name__ == "__main__": harness.main()``.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BUILDDIR = os.environ.get("SY_BUILDDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
SRCDIR = os.environ.get("SY_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
FIXTURES = os.path.join(SRCDIR, "tests", "fixtures")


def binary(name):
    """Path of a built program: switchyard, sy-sim, sy-load."""
    return os.path.join(BUILDDIR, name)


def _ephemeral_range():
    """The kernel's range of local ports for outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(v) for v in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(n=1):
    """n consecutive free TCP ports on 127.0.0.1 (first one returned),
    below the kernel's ephemeral range: a port taken from that range may be
    given to an outgoing connection (to Redis, to a backend) before the
    server that was meant to listen on it starts."""
    import random
    lo, hi = _ephemeral_range()
    top, bottom = (lo - n, 10000) if lo - n > 12000 else (65535 - n, hi + 1)
    for _ in range(200):
        base = random.randrange(bottom, top)
        socks = []
        try:
            for i in range(n):
                t = socket.socket()
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                t.bind(("127.0.0.1", base + i))
                socks.append(t)
            return base
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise RuntimeError("no free ports")


def free_port():
    return free_ports(1)


def wait_port(port, timeout=10.0, proc=None):
    """Waits until something accepts on 127.0.0.1:port."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening on %d" % (proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on port %d" % port)


# What AddressSanitizer, LeakSanitizer and UBSan print (a build configured
# with --enable-asan): a process that printed one fails its test.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")


def eventually(fetch, check, timeout=5.0):
    """Calls fetch() until check(value) holds (a worker records a request
    just after answering it); returns the last value either way."""
    deadline = time.time() + timeout
    while True:
        value = fetch()
        if check(value) or time.time() > deadline:
            return value
        time.sleep(0.02)


class Proc:
    """A child process whose output goes to a log file; stopped at cleanup."""

    def __init__(self, argv, env=None, name=None, cwd=None):
        self.argv = argv
        self.name = name or os.path.basename(argv[0])
        fd, self.log_path = tempfile.mkstemp(prefix="sy-%s-" % self.name, suffix=".log")
        self.log = os.fdopen(fd, "w+b")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  env=full_env, cwd=cwd, start_new_session=True)

    @property
    def pid(self):
        return self.p.pid

    def poll(self):
        return self.p.poll()

    def output(self):
        """Everything the process printed so far."""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def signal(self, sig):
        if self.p.poll() is None:
            self.p.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout; returns the exit code."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def cleanup(self):
        """Stops the process; a sanitizer report in its output fails the test."""
        try:
            self.stop()
            out = self.output()
            for mark in SANITIZER_MARKS:
                if mark in out:
                    at = out.index(mark)
                    raise AssertionError("%s reported a memory error:\n%s"
                                         % (self.name, out[max(0, at - 200):at + 3000]))
        finally:
            if os.path.exists(self.log_path) and not os.environ.get("SY_KEEP_LOGS"):
                os.unlink(self.log_path)


def start(testcase, argv, port=None, env=None, name=None, timeout=10.0):
    """Starts argv, registers its cleanup on testcase, waits for port."""
    proc = Proc(argv, env=env, name=name)
    testcase.addCleanup(proc.cleanup)
    if port is not None:
        try:
            wait_port(port, timeout, proc.p)
        except RuntimeError as e:
            raise RuntimeError("%s\n--- output of %s:\n%s" % (e, proc.name, proc.output()))
    return proc


class RedisServer:
    """A redis-server on a free loopback port, without persistence, stopped
    at cleanup.  kill() ends it at once (SIGKILL, by PID), start() brings it
    back on the same port, empty; pause()/resume() stop and continue it
    (SIGSTOP/SIGCONT), a Redis that stops answering."""

    def __init__(self, testcase, port=None):
        self.testcase = testcase
        self.port = port or free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = start(self.testcase, ["/usr/bin/redis-server", "--save", "", "--appendonly", "no",
                                          "--bind", "127.0.0.1", "--port", str(self.port)],
                          port=self.port, name="redis-server")

    def kill(self):
        self.proc.p.kill()
        self.proc.p.wait()

    def pause(self):
        self.proc.signal(signal.SIGSTOP)

    def resume(self):
        self.proc.signal(signal.SIGCONT)

    def command(self, *args, timeout=5.0):
        """Sends one command, returns its reply: str, int, list, None; raises on an error reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            return _resp_read(s.makefile("rb"))


def _resp_read(f):
    """One RESP reply from the file f."""
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError("redis: " + rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:n]
        return data.decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise RuntimeError("redis: unexpected reply %r" % line)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # dict, lower-case names
        self.body = body

    def json(self):
        return json.loads(self.body)


def request(port, method, path, body=None, headers=None, timeout=30.0, host="127.0.0.1"):
    """One HTTP/1.1 request; body may be bytes, str or a JSON-able object."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def post_json(port, path, obj, headers=None, timeout=30.0):
    return request(port, "POST", path, obj, headers, timeout)


def concurrently(calls):
    """Runs the callables at the same moment, one thread each; returns
    their results in order (an exception is returned as the result)."""
    results = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i):
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as e:  # noqa: BLE001 - handed to the test
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def parse_sse(data):
    """Splits SSE bytes into a list of {"event", "data"} dicts (data as str)."""
    events = []
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        ev = {"event": "", "data": None}
        lines = []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                lines.append(value)
            elif name == "event":
                ev["event"] = value
        if lines:
            ev["data"] = "\n".join(lines)
        if lines or ev["event"]:
            events.append(ev)
    return events


def stream_events(port, path, obj, headers=None, timeout=30.0):
    """POSTs obj and returns (status, headers, events, raw body bytes)."""
    r = post_json(port, path, obj, headers, timeout)
    return r.status, r.headers, parse_sse(r.body), r.body


class TapResult(unittest.TestResult):
    """Prints one TAP line per test."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def _line(self, ok, test, extra=""):
        self.n += 1
        name = "%s.%s" % (type(test).__name__, test._testMethodName)
        print("%sok %d - %s%s" % ("" if ok else "not ", self.n, name, extra), flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def _fail(self, test, err, kind):
        self._line(False, test)
        text = self._exc_info_to_string(err, test)
        for line in text.rstrip().split("\n"):
            print("# " + line, flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err, "failure")

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err, "error")

    def addSkip(self, test, reason):
        # Tests never skip: a skip is reported as a failure.
        super().addSkip(test, reason)
        self._line(False, test, " # skipped: %s" % reason)
        self.failures.append((test, reason))


def main():
    """Runs the calling module's tests (or those named in argv) as TAP."""
    module = sys.modules["__main__"]
    loader = unittest.TestLoader()
    if len(sys.argv) > 1:
        suite = loader.loadTestsFromNames(sys.argv[1:], module)
    else:
        suite = loader.loadTestsFromModule(module)
    result = TapResult()
    suite.run(result)
    print("1..%d" % result.n)
    sys.exit(0 if result.wasSuccessful() and not result.failures else 1)


class ScriptedBackend:
    """A backend on loopback that answers every POST with a scripted reply
    and records what it received (path, headers, body).

    reply: a function (path, headers, body_bytes) -> (status, headers_dict,
    list of byte chunks, delay between chunks in seconds, close_early).
    A number among the chunks is a pause of that many seconds.
    With close_early, the connection is closed after the chunks without
    ending the response.
    """

    def __init__(self, reply, tls_context=None):
        import http.server
        import threading

        outer = self
        self.reply = reply
        self.received = []
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with outer.lock:
                    outer.received.append({"method": self.command, "path": self.path,
                                           "headers": {k.lower(): v for k, v in self.headers.items()},
                                           "body": body})
                status, headers, chunks, delay, close_early = outer.reply(self.path, self.headers, body)
                self.send_response(status)
                chunked = headers.get("Transfer-Encoding") == "chunked"
                for k, v in headers.items():
                    self.send_header(k, v)
                if not chunked and "Content-Length" not in headers:
                    self.send_header("Content-Length", str(sum(len(c) for c in chunks
                                                               if isinstance(c, bytes))))
                self.end_headers()
                try:
                    for c in chunks:
                        if not isinstance(c, bytes):
                            time.sleep(c)
                            continue
                        if chunked:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                        else:
                            self.wfile.write(c)
                        self.wfile.flush()
                        if delay:
                            time.sleep(delay)
                    if close_early:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_POST = _handle
            do_GET = _handle

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def fixture(name):
    """Bytes of tests/fixtures/<name>."""
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()

"""HTTPS on the client listener: the tls object and --tls-cert/--tls-key,
checked as a client sees it (curl, Python's ssl module, openssl s_client):
answers whole and streamed, ALPN http/1.1, the lowest TLS version, plain
HTTP refused, client certificates (mTLS), certificates that do not load,
and a reload that changes the certificate for new connections only."""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import harness
from harness import binary, eventually, free_ports, start
from test_proxy import Gateway

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
SERIAL = 0x1001		# the server certificate's
NEW_SERIAL = 0x1002	# the one a reload brings in


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_key(d, name):
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", name + ".key", cwd=d)


def make_ca(d, name):
    make_key(d, name)
    openssl("req", "-x509", "-new", "-key", name + ".key", "-out", name + ".pem",
            "-days", "2", "-subj", "/CN=" + name, cwd=d)


def make_cert(d, name, ca, cn, serial, days="2", key=None, server=True):
    """A certificate for key (default: a new name.key) signed by ca."""
    key = key or name
    if not os.path.exists(os.path.join(d, key + ".key")):
        make_key(d, key)
    openssl("req", "-new", "-key", key + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else
                "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-set_serial", str(serial), "-days", days, "-extfile", ext, "-out", name + ".pem", cwd=d)


def make_dated_cert(d, name, ca, key, start_date, end_date):
    """A certificate of key valid from start_date to end_date
    (YYYYMMDDHHMMSSZ), through `openssl ca`, which takes any dates."""
    db = os.path.join(d, "cadb-" + name)
    os.mkdir(db)
    open(os.path.join(db, "index.txt"), "w").close()
    with open(os.path.join(db, "serial"), "w") as f:
        f.write("3000\n")
    with open(os.path.join(d, name + ".cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\n"
                "serial = %s/serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n"
                "[p]\ncommonName = supplied\n" % (db, db, db))
    openssl("req", "-new", "-key", key + ".key", "-out", name + ".csr", "-subj", "/CN=localhost", cwd=d)
    openssl("ca", "-batch", "-notext", "-config", name + ".cnf", "-cert", ca + ".pem",
            "-keyfile", ca + ".key", "-in", name + ".csr", "-out", name + ".pem",
            "-startdate", start_date, "-enddate", end_date, cwd=d)


class Certs:
    """The certificates of the tests, made once in a temporary directory."""

    def __init__(self):
        self.dir = d = tempfile.mkdtemp(prefix="sy-tls-")
        make_ca(d, "ca")
        make_cert(d, "server", "ca", "localhost", SERIAL)
        make_cert(d, "renewed", "ca", "switchyard-renewed", NEW_SERIAL)
        make_key(d, "other")
        make_dated_cert(d, "expired", "ca", "server", "20200101000000Z", "20200102000000Z")
        make_dated_cert(d, "future", "ca", "server", "20991231000000Z", "21000101000000Z")
        make_ca(d, "clientca")
        make_cert(d, "client", "clientca", "a-client", 0x2001, server=False)
        make_ca(d, "rogueca")
        make_cert(d, "rogue", "rogueca", "a-rogue", 0x2002, server=False)

    def __call__(self, name):
        return os.path.join(self.dir, name)


CERTS = None


def setUpModule():
    global CERTS
    if shutil.which("openssl") is None:
        raise unittest.SkipTest("no openssl command")
    CERTS = Certs()


def tearDownModule():
    if CERTS is not None:
        shutil.rmtree(CERTS.dir, ignore_errors=True)


def client_context(cert=None):
    """A client context trusting the test CA, with a client certificate
    (cert.pem, cert.key) when cert is given."""
    ctx = ssl.create_default_context(cafile=CERTS("ca.pem"))
    if cert is not None:
        ctx.load_cert_chain(CERTS(cert + ".pem"), CERTS(cert + ".key"))
    return ctx


def https_post(port, body, ctx=None, conn=None, host="localhost"):
    """POSTs body as JSON over HTTPS; returns (status, parsed body, conn)."""
    conn = conn or http.client.HTTPSConnection(host, port, context=ctx or client_context(), timeout=10)
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    return r.status, data, conn


def read_to_close(sock):
    """Everything sock receives until the peer closes (a reset ends it too)."""
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got
            got += chunk
    except ConnectionResetError:
        return got


def peer_serial(port):
    """The serial number of the certificate a new connection sees."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with client_context().wrap_socket(s, server_hostname="localhost") as t:
            return int(t.getpeercert()["serialNumber"], 16)


def s_client(port, *args, stdin=b"Q\n"):
    """openssl s_client against the port; returns (exit code, output)."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-CAfile", CERTS("ca.pem"), "-verify_return_error"] + list(args),
                       input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def tls_config(**tls):
    conf = {"cert_file": CERTS("server.pem"), "key_file": CERTS("server.key")}
    conf.update(tls)
    return conf


class TlsListener(unittest.TestCase):
    def setUp(self):
        self.sim = free_ports(1)
        start(self, [binary("sy-sim"), "--port", str(self.sim), "--speed", "0", "--quiet"],
              port=self.sim, name="sy-sim")

    def gateway(self, tls=None):
        cfg = {"backends": [{"name": "s", "url": "http://127.0.0.1:%d/v1" % self.sim}],
               "routes": [{"name": "r", "models": ["m"]}],
               "tls": tls if tls is not None else tls_config()}
        return Gateway(self, cfg)

    def curl(self, port, body, *extra):
        if shutil.which("curl") is None:
            self.skipTest("no curl")
        p = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", CERTS("ca.pem")] + list(extra) +
                           ["-H", "Content-Type: application/json", "-d", json.dumps(body),
                            "https://127.0.0.1:%d/v1/chat/completions" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_curl_gets_the_answer_over_https_whole_and_streamed(self):
        gw = self.gateway()
        rc, out, err = self.curl(gw.port, CHAT)
        self.assertEqual(rc, 0, err)
        answer = json.loads(out)
        self.assertEqual(answer["object"], "chat.completion")
        self.assertTrue(answer["choices"][0]["message"]["content"])
        self.assertEqual(answer["usage"]["completion_tokens"], 4)
        rc, out, err = self.curl(gw.port, dict(CHAT, stream=True, max_tokens=5), "-N")
        self.assertEqual(rc, 0, err)
        events = harness.parse_sse(out.encode())
        self.assertEqual(events[-1]["data"], "[DONE]")
        deltas = [json.loads(e["data"]) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in deltas if c["choices"])
        self.assertTrue(text.strip())
        self.assertEqual(gw.log_lines(2)[-1]["stream"], True)

    def test_python_ssl_client_keeps_one_connection_for_several_requests(self):
        gw = self.gateway()
        status, data, conn = https_post(gw.port, CHAT)
        self.assertEqual(status, 200, data)
        first = conn.sock
        self.assertIn(first.version(), ("TLSv1.2", "TLSv1.3"))
        for _ in range(3):
            status, data, conn = https_post(gw.port, CHAT, conn=conn)
            self.assertEqual(status, 200, data)
        self.assertIs(conn.sock, first)
        conn.close()

    def test_a_body_larger_than_a_tls_record_arrives_whole(self):
        gw = self.gateway()
        big = dict(CHAT, messages=[{"role": "user", "content": "word " * 5000}])
        status, data, conn = https_post(gw.port, big)
        conn.close()
        self.assertEqual(status, 200, data)
        self.assertGreater(gw.log_lines(1)[-1]["bytes_in"], 25000)

    def test_long_streams_reach_a_slow_reader_whole(self):
        # Five pipelined streams of 6000 tokens (7 MB) to a client that
        # waits before reading: more than the kernel's buffers hold, so the
        # gateway's TLS writes wait for the socket.
        gw = self.gateway()
        body = json.dumps(dict(CHAT, stream=True, max_tokens=6000)).encode()
        req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        last = req.replace(b"Host: localhost\r\n", b"Host: localhost\r\nConnection: close\r\n")
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(20)
        raw.connect(("127.0.0.1", gw.port))
        with client_context().wrap_socket(raw, server_hostname="localhost") as t:
            t.sendall(req * 4 + last)
            time.sleep(1.5)
            got = read_to_close(t)
        self.assertEqual(got.count(b"HTTP/1.1 200 OK\r\n"), 5)
        self.assertEqual(got.count(b"data: [DONE]"), 5)
        self.assertGreater(len(got), 5 * 1000000)
        lines = gw.log_lines(5)
        self.assertEqual([l["completion_tokens"] for l in lines], [6000] * 5)

    def test_alpn_selects_http11(self):
        gw = self.gateway()
        rc, out = s_client(gw.port, "-alpn", "h2,http/1.1")
        self.assertEqual(rc, 0, out)
        self.assertIn("ALPN protocol: http/1.1", out)
        ctx = client_context()
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                self.assertEqual(t.selected_alpn_protocol(), "http/1.1")

    def test_a_client_offering_only_h2_is_refused(self):
        gw = self.gateway()
        rc, out = s_client(gw.port, "-alpn", "h2")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("no application protocol", out)

    def assertVersions(self, port, refused, accepted):
        """A client speaking only refused (s_client's flags) is refused
        for its version; one speaking only accepted gets a session in it."""
        rc, out = s_client(port, *refused)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("alert protocol version", out)
        self.assertIn("Cipher is (NONE)", out)
        rc, out = s_client(port, accepted)
        self.assertEqual(rc, 0, out)
        self.assertIn("New, TLSv%s, Cipher is" % accepted[4:].replace("_", "."), out)

    def test_tls_1_1_is_refused_and_1_2_accepted_by_default(self):
        gw = self.gateway()
        self.assertVersions(gw.port, ("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"), "-tls1_2")

    def test_min_version_1_3_refuses_tls_1_2(self):
        gw = self.gateway(tls_config(min_version="1.3"))
        self.assertVersions(gw.port, ("-tls1_2",), "-tls1_3")

    def test_plain_http_to_the_tls_port_gets_no_answer(self):
        gw = self.gateway()
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n")
            got = read_to_close(s)
        self.assertNotIn(b"HTTP/1.1 200", got)
        self.assertNotIn(b"data", got)
        # The listener still serves HTTPS.
        status, data, conn = https_post(gw.port, CHAT)
        conn.close()
        self.assertEqual(status, 200, data)

    def assertRefused(self, port, ctx):
        """A request over ctx gets no answer: the handshake or the first
        read fails (TLS 1.3 refuses a client certificate after the client's
        side of the handshake)."""
        conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
        try:
            with self.assertRaises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
                https_post(port, CHAT, conn=conn)
        finally:
            conn.close()

    def test_mtls_needs_a_client_certificate_of_the_client_ca(self):
        gw = self.gateway(tls_config(client_ca_file=CERTS("clientca.pem")))
        self.assertRefused(gw.port, client_context())
        self.assertRefused(gw.port, client_context("rogue"))
        status, data, conn = https_post(gw.port, CHAT, ctx=client_context("client"))
        conn.close()
        self.assertEqual(status, 200, data)
        rc, out = s_client(gw.port, "-ign_eof", "-cert", CERTS("client.pem"), "-key", CERTS("client.key"),
                           stdin=b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertIn("HTTP/1.1 200", out)

    def test_an_mtls_session_is_resumed(self):
        gw = self.gateway(tls_config(client_ca_file=CERTS("clientca.pem")))
        ctx = client_context("client")
        status, data, conn = https_post(gw.port, CHAT, ctx=ctx)
        self.assertEqual(status, 200, data)
        session = conn.sock.session		# its ticket came with the answer
        conn.close()
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="localhost", session=session) as t:
                t.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                got = read_to_close(t)
                self.assertTrue(t.session_reused)
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:200])

    def test_sighup_brings_a_new_certificate_to_new_connections_only(self):
        d = tempfile.mkdtemp(prefix="sy-tls-live-")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        shutil.copy(CERTS("server.pem"), cert)
        shutil.copy(CERTS("server.key"), key)
        gw = self.gateway({"cert_file": cert, "key_file": key})
        self.assertEqual(peer_serial(gw.port), SERIAL)
        status, data, old = https_post(gw.port, CHAT)
        self.assertEqual(status, 200, data)

        shutil.copy(CERTS("renewed.pem"), cert)
        shutil.copy(CERTS("renewed.key"), key)
        gw.proc.signal(signal.SIGHUP)
        self.assertIn("reloaded", eventually(gw.proc.output, lambda o: "reloaded" in o))
        self.assertEqual(peer_serial(gw.port), NEW_SERIAL)
        # The connection made before keeps its session and still works.
        status, data, old = https_post(gw.port, CHAT, conn=old)
        self.assertEqual(status, 200, data)
        self.assertEqual(int(old.sock.getpeercert()["serialNumber"], 16), SERIAL)
        old.close()

        # A reload with an expired certificate keeps the one in force.
        shutil.copy(CERTS("expired.pem"), cert)
        shutil.copy(CERTS("server.key"), key)
        gw.proc.signal(signal.SIGHUP)
        out = eventually(gw.proc.output, lambda o: "reload failed" in o)
        self.assertIn("reload failed, keeping the running config", out)
        self.assertIn("tls.cert_file: %s: the certificate expired on Jan  2 00:00:00 2020 GMT" % cert, out)
        self.assertEqual(peer_serial(gw.port), NEW_SERIAL)
        status, data, conn = https_post(gw.port, CHAT)
        conn.close()
        self.assertEqual(status, 200, data)

    def test_zero_config_flags_serve_https(self):
        port = free_ports(2)
        start(self, [binary("switchyard"), "--upstream", "http://127.0.0.1:%d/v1" % self.sim,
                     "--listen", "127.0.0.1:%d" % port, "--admin", "127.0.0.1:%d" % (port + 1),
                     "--access-log", "off", "--tls-cert", CERTS("server.pem"),
                     "--tls-key", CERTS("server.key")], port=port, name="switchyard")
        rc, out, err = self.curl(port, CHAT)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["object"], "chat.completion")
        self.assertEqual(peer_serial(port), SERIAL)


class TlsConfigErrors(unittest.TestCase):
    """Certificates that do not load stop switchyard -t, and a start."""

    def check(self, tls, *flags):
        d = tempfile.mkdtemp(prefix="sy-tls-conf-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "switchyard.json")
        port = free_ports(2)
        with open(path, "w") as f:
            json.dump({"listen": "127.0.0.1:%d" % port, "admin": "127.0.0.1:%d" % (port + 1),
                       "backends": [{"name": "s", "url": "http://127.0.0.1:9/v1"}],
                       "routes": [{"name": "r", "models": ["*"]}], "tls": tls}, f)
        outs = []
        for argv in ([binary("switchyard"), "-t", "-c", path], [binary("switchyard"), "-c", path]):
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
            self.assertEqual(p.returncode, 1, p.stdout)
            outs.append(p.stdout.decode())
        self.assertEqual(outs[0], outs[1])
        return outs[0]

    def test_an_expired_certificate_is_refused(self):
        out = self.check(tls_config(cert_file=CERTS("expired.pem")))
        self.assertIn("tls.cert_file: %s: the certificate expired on Jan  2 00:00:00 2020 GMT"
                      % CERTS("expired.pem"), out)

    def test_a_certificate_not_yet_valid_is_refused(self):
        out = self.check(tls_config(cert_file=CERTS("future.pem")))
        self.assertIn("tls.cert_file: %s: the certificate is not valid before Dec 31 00:00:00 2099 GMT"
                      % CERTS("future.pem"), out)

    def test_a_key_of_another_certificate_is_refused(self):
        out = self.check(tls_config(key_file=CERTS("other.key")))
        self.assertIn("tls.key_file: %s: the key does not match the certificate in %s"
                      % (CERTS("other.key"), CERTS("server.pem")), out)

    def test_a_missing_file_is_refused(self):
        out = self.check(tls_config(cert_file=CERTS("nope.pem")))
        self.assertIn("tls.cert_file: %s: cannot read: No such file or directory" % CERTS("nope.pem"), out)

    def test_a_file_without_a_certificate_is_refused(self):
        out = self.check(tls_config(cert_file=CERTS("server.key")))
        self.assertIn("tls.cert_file: %s: not a PEM certificate" % CERTS("server.key"), out)

    def test_a_valid_config_passes_the_check(self):
        p = subprocess.run([binary("switchyard"), "-t", "--upstream", "http://127.0.0.1:9/v1",
                            "--tls-cert", CERTS("server.pem"), "--tls-key", CERTS("server.key")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        self.assertEqual(p.returncode, 0, p.stdout)

    def test_zero_config_flags_report_a_bad_key_by_flag(self):
        p = subprocess.run([binary("switchyard"), "-t", "--upstream", "http://127.0.0.1:9/v1",
                            "--tls-cert", CERTS("server.pem"), "--tls-key", CERTS("other.key")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("--tls-key %s: %s: the key does not match" % (CERTS("other.key"), CERTS("other.key")),
                      p.stdout.decode())
        p = subprocess.run([binary("switchyard"), "-t", "--upstream", "http://127.0.0.1:9/v1",
                            "--tls-cert", CERTS("server.pem")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        self.assertEqual(p.returncode, 2, p.stdout)
        self.assertIn("--tls-cert and --tls-key go together", p.stdout.decode())


if __name__ == "__main__":
    harness.main()

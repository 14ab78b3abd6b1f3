"""rabbit_lib.py - a private rabbitmq-server for a test: its own epmd (a child
of the test, on a free loopback port), node name, data, log and config under a
temp dir, AMQP on a free 127.0.0.1 port; started and stopped by PID. RabbitMQ
boots slowly: start() waits (bounded) until its AMQP port answers."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rabbit:
    def __init__(self, fail, wrap=(), tls=None):
        """wrap: a command prefix for the server (e.g. nice or chrt). tls: (ca, cert, key) PEM paths: also an AMQPS listener on self.ssl_port
        (the broker does not ask for client certificates)."""
        self.fail, self.wrap = fail, list(wrap)
        if not os.access(SERVER, os.X_OK) or not shutil.which("epmd"):
            fail("rabbitmq-server not installed (scripts/setup.sh installs it)")
        self.tmp = tempfile.mkdtemp(prefix="volley-rabbit-")
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        self.node = "volleytest%d@localhost" % os.getpid()
        for d in ("mnesia", "log", "home"):
            os.makedirs(os.path.join(self.tmp, d))
        conf = os.path.join(self.tmp, "rabbitmq.conf")
        with open(conf, "w") as f:
            f.write("listeners.tcp.1 = 127.0.0.1:%d\n" % self.port)
            f.write("log.console = false\nlog.file.level = warning\n")
            self.ssl_port = None
            if tls:
                self.ssl_port = free_port()
                f.write("listeners.ssl.default = 127.0.0.1:%d\n" % self.ssl_port)
                f.write("ssl_options.cacertfile = %s\nssl_options.certfile = %s\n"
                        "ssl_options.keyfile = %s\nssl_options.verify = verify_none\n"
                        "ssl_options.fail_if_no_peer_cert = false\n" % tls)
        plugins = os.path.join(self.tmp, "enabled_plugins")
        with open(plugins, "w") as f:
            f.write("[].\n")
        self.env = dict(os.environ, HOME=os.path.join(self.tmp, "home"),
                        RABBITMQ_NODENAME=self.node, RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                        RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_DIST_PORT=str(self.dist_port),
                        RABBITMQ_MNESIA_BASE=os.path.join(self.tmp, "mnesia"),
                        RABBITMQ_LOG_BASE=os.path.join(self.tmp, "log"),
                        RABBITMQ_CONFIG_FILE=conf, RABBITMQ_ENABLED_PLUGINS_FILE=plugins,
                        RABBITMQ_PID_FILE=os.path.join(self.tmp, "rabbit.pid"),
                        ERL_EPMD_PORT=str(self.epmd_port), ERL_EPMD_ADDRESS="127.0.0.1",
                        # no scheduler busy-waiting: the broker shares this machine's few
                        # cores with the engine under test (RabbitMQ's runtime tuning
                        # guide: +sbwt none for shared hosts)
                        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none")
        self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port), "-address",
                                      "127.0.0.1"], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.proc = None
        self.url = "amqp://guest:guest@127.0.0.1:%d/" % self.port

    def start(self):
        out = open(os.path.join(self.tmp, "server.out"), "ab")
        cmd = self.wrap + [SERVER]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=out,
                                     start_new_session=True)
        end = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                self.fail("rabbitmq-server exited %d at start: %s" % (self.proc.returncode,
                                                                      self.log_tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"AMQP\x00\x00\x09\x01")
                    s.settimeout(5)
                    if s.recv(7)[:1] == b"\x01":      # a connection.start frame
                        if self.ssl_port:
                            socket.create_connection(("127.0.0.1", self.ssl_port),
                                                     timeout=5).close()
                        return
            except OSError:
                pass
            time.sleep(0.25)
        self.fail("rabbitmq-server not answering on %d after %d s: %s" %
                  (self.port, START_TIMEOUT_S, self.log_tail()))

    def stop(self):
        """SIGTERM the server (its process group: the Erlang VM and its helpers),
        wait, SIGKILL if it hangs."""
        if not self.proc or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        end = time.monotonic() + 10                    # the group's stragglers
        while time.monotonic() < end:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)

    def log_tail(self):
        p = os.path.join(self.tmp, "server.out")
        try:
            with open(p, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def consume(self, queue, count, timeout=120):
        """Take @count messages off @queue (amqp-consume, in queue order): list of bodies."""
        if count == 0:
            return []
        r = subprocess.run(["amqp-consume", "--url", self.url + "%2f", "-q", queue, "-c", str(count),
                            "-p", "100", "cat"], capture_output=True, timeout=timeout)
        if r.returncode != 0:
            self.fail("amqp-consume exited %d: %s" % (r.returncode, r.stderr[-500:]))
        return r.stdout

    def queue_len(self, queue):
        r = subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", self.node, "list_queues", "-q", "name",
                            "messages"], env=self.env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            self.fail("rabbitmqctl list_queues exited %d: %s" % (r.returncode, r.stderr))
        for line in r.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue:
                return int(parts[1])
        return 0

    def purge(self, queue):
        r = subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", self.node, "purge_queue", "-q",
                            queue], env=self.env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            self.fail("rabbitmqctl purge_queue exited %d: %s" % (r.returncode, r.stderr))

    def close(self):
        try:
            self.stop()
        finally:
            if self.epmd.poll() is None:
                self.epmd.send_signal(signal.SIGTERM)
                try:
                    self.epmd.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.epmd.kill()
                    self.epmd.wait()
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---- reading messages with their properties through librabbitmq (ctypes) ----
# An independent decoder of what volley publishes (volley encodes the publish
# frames itself, engine/events/events_amqp.c): librabbitmq's own basic.get and
# content-header decoding. Struct layouts: amqp.h / amqp_framing.h of 0.11 (LP64).
import ctypes  # noqa: E402


class _Bytes(ctypes.Structure):
    _fields_ = [("len", ctypes.c_size_t), ("bytes", ctypes.c_void_p)]

    def get(self):
        return ctypes.string_at(self.bytes, self.len) if self.len else b""


class _Table(ctypes.Structure):
    _fields_ = [("num_entries", ctypes.c_int), ("entries", ctypes.c_void_p)]


class _Props(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint32), ("content_type", _Bytes),
                ("content_encoding", _Bytes), ("headers", _Table),
                ("delivery_mode", ctypes.c_uint8), ("priority", ctypes.c_uint8),
                ("correlation_id", _Bytes), ("reply_to", _Bytes), ("expiration", _Bytes),
                ("message_id", _Bytes), ("timestamp", ctypes.c_uint64), ("type", _Bytes),
                ("user_id", _Bytes), ("app_id", _Bytes), ("cluster_id", _Bytes)]


class _Pool(ctypes.Structure):
    _fields_ = [("pagesize", ctypes.c_size_t), ("pages", ctypes.c_int * 4),
                ("large", ctypes.c_int * 4), ("next_page", ctypes.c_int),
                ("alloc_block", ctypes.c_void_p), ("alloc_used", ctypes.c_size_t)]


class _Message(ctypes.Structure):
    _fields_ = [("properties", _Props), ("body", _Bytes), ("pool", _Pool)]


class _Method(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("decoded", ctypes.c_void_p)]


class _Reply(ctypes.Structure):
    _fields_ = [("reply_type", ctypes.c_int), ("reply", _Method), ("library_error", ctypes.c_int)]


_GET_OK = 0x003C0047
_FLAG_BITS = {"content_type": 15, "delivery_mode": 12, "message_id": 7, "type": 5}


def get_with_properties(fail, port, queue, count):
    """basic.get (auto-ack) up to @count messages off @queue at 127.0.0.1:@port as
    guest: [(properties dict, body bytes)] in queue order."""
    lib = ctypes.CDLL("librabbitmq.so.4")
    lib.amqp_new_connection.restype = ctypes.c_void_p
    lib.amqp_tcp_socket_new.restype = ctypes.c_void_p
    lib.amqp_tcp_socket_new.argtypes = [ctypes.c_void_p]
    lib.amqp_socket_open.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.amqp_login.restype = _Reply
    lib.amqp_channel_open.argtypes = [ctypes.c_void_p, ctypes.c_uint16]
    lib.amqp_get_rpc_reply.restype = _Reply
    lib.amqp_get_rpc_reply.argtypes = [ctypes.c_void_p]
    lib.amqp_basic_get.restype = _Reply
    lib.amqp_basic_get.argtypes = [ctypes.c_void_p, ctypes.c_uint16, _Bytes, ctypes.c_int]
    lib.amqp_read_message.restype = _Reply
    lib.amqp_read_message.argtypes = [ctypes.c_void_p, ctypes.c_uint16,
                                      ctypes.POINTER(_Message), ctypes.c_int]
    lib.amqp_destroy_message.argtypes = [ctypes.POINTER(_Message)]
    lib.amqp_maybe_release_buffers.argtypes = [ctypes.c_void_p]
    lib.amqp_connection_close.restype = _Reply       # returned by value
    lib.amqp_connection_close.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.amqp_destroy_connection.argtypes = [ctypes.c_void_p]
    conn = lib.amqp_new_connection()
    sock = lib.amqp_tcp_socket_new(conn)
    if not sock or lib.amqp_socket_open(sock, b"127.0.0.1", port) != 0:
        fail("librabbitmq: cannot connect to 127.0.0.1:%d" % port)
    try:
        r = lib.amqp_login(ctypes.c_void_p(conn), b"/", ctypes.c_int(0), ctypes.c_int(131072),
                           ctypes.c_int(0), ctypes.c_int(0), b"guest", b"guest")
        if r.reply_type != 1:
            fail("librabbitmq: login failed (%d)" % r.reply_type)
        lib.amqp_channel_open(conn, 1)
        if lib.amqp_get_rpc_reply(conn).reply_type != 1:
            fail("librabbitmq: channel.open failed")
        q = queue.encode()
        qb = _Bytes(len(q), ctypes.cast(ctypes.c_char_p(q), ctypes.c_void_p))
        out = []
        for _ in range(count):
            lib.amqp_maybe_release_buffers(conn)
            r = lib.amqp_basic_get(conn, 1, qb, 1)
            if r.reply_type != 1:
                fail("librabbitmq: basic.get failed (%d)" % r.reply_type)
            if r.reply.id != _GET_OK:
                break                                  # get-empty
            m = _Message()
            r = lib.amqp_read_message(conn, 1, ctypes.byref(m), 0)
            if r.reply_type != 1:
                fail("librabbitmq: read_message failed (%d)" % r.reply_type)
            p = m.properties
            props = {k: bool(p.flags & (1 << b)) for k, b in _FLAG_BITS.items()}
            props.update(content_type=p.content_type.get().decode(),
                         delivery_mode=p.delivery_mode, message_id=p.message_id.get().decode(),
                         type=p.type.get().decode(), flags=p.flags)
            out.append((props, m.body.get()))
            lib.amqp_destroy_message(ctypes.byref(m))
        return out
    finally:
        lib.amqp_connection_close(conn, 200)
        lib.amqp_destroy_connection(conn)

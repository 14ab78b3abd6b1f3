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
    def __init__(self, fail, nice=0):
        self.fail, self.nice = fail, nice
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
                        ERL_EPMD_PORT=str(self.epmd_port), ERL_EPMD_ADDRESS="127.0.0.1")
        self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port), "-address",
                                      "127.0.0.1"], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.proc = None
        self.url = "amqp://guest:guest@127.0.0.1:%d/" % self.port

    def start(self):
        out = open(os.path.join(self.tmp, "server.out"), "ab")
        cmd = (["nice", "-n", str(self.nice)] if self.nice else []) + [SERVER]
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

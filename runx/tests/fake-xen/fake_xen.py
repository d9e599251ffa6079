#!/usr/bin/env python3
"""A fake Xen for runx's CLI tests: a xenstored that speaks enough of xs_wire, simulates
domains and their guests, and an `xl` client (this file, called as `xl`) that asks it.

The guest of a domain runs the launch spec found in its ramdisk, reading args[0] as a
command: `echo WORDS`, `exit N`, `env` (prints env, cwd, uid:gid, hostname), `wait`
(until a signal arrives through xenstore: prints it, exits 128+N), `crash`. A domain whose
ramdisk holds no launch spec (a container's own kernel) behaves like the lab's baremetal test
kernel: it prints its command line and shuts down for the reason a `shutdown=REASON` word
names (poweroff when none); with a `wait=1` word it first waits for Xen's shutdown request
(control/shutdown), as a Linux guest would. A domain created without -p boots at once; a launch
spec with wait_for_start runs its command only once data/runx/start is written, as runx-init does. Every `xl` call is appended to STATE/xl.log.

Domains are addressed by name or domid, as xl does; a config's `uuid` becomes the domain's `vm`
key (/vm/UUID) as libxl writes it. Faults: a file STATE/fail-create makes `xl create` fail; a
file STATE/slow-create holding N makes `xl create` return only N seconds after the domain exists
(so that a test can kill the runtime in between)."""

import gzip, os, socket, struct, subprocess, sys, threading, time

XS_DEBUG, XS_DIRECTORY, XS_READ, XS_WATCH, XS_WRITE, XS_RM, XS_WATCH_EVENT, XS_ERROR = 0, 1, 2, 4, 11, 13, 15, 16


class Domain:
    def __init__(self, domid, config):
        self.domid, self.config = domid, config
        self.name = config["name"]
        self.paused, self.started = True, False
        # None while running, else xl's shutdown reason letter: "-" poweroff, "r", "s", "c", "w", "S".
        self.reason = None
        self.master, self.slave = os.openpty()


class Store:
    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.lock = threading.RLock()
        self.data, self.watches, self.domains, self.next_domid = {}, [], {}, 1

    # xenstore
    def write(self, path, value):
        with self.lock:
            self.data[path] = value
            self.fire(path)

    def rm(self, path):
        with self.lock:
            for key in [k for k in self.data if k == path or k.startswith(path + "/")]:
                del self.data[key]
            self.fire(path)

    def fire(self, path):
        for conn, wpath, token in list(self.watches):
            if path == wpath or path.startswith(wpath + "/"):
                send(conn, XS_WATCH_EVENT, 0, path.encode() + b"\0" + token.encode() + b"\0")

    def watch(self, conn, path, token):
        with self.lock:
            self.watches.append((conn, path, token))
            send(conn, XS_WATCH_EVENT, 0, path.encode() + b"\0" + token.encode() + b"\0")

    # the toolstack
    def xl(self, args):
        with open(os.path.join(self.state_dir, "xl.log"), "a") as log:
            log.write(" ".join(args) + "\n")
        with self.lock:
            verb, rest = args[0], args[1:]
            dom = self.find(rest[-1]) if rest else None
            if verb == "create":
                return self.create(rest[-1], paused="-p" in rest)
            if verb == "list" and not rest:
                rows = "".join("%s %d 0 1 -b---- 0.1\n" % (d.name, d.domid) for d in self.domains.values())
                return 0, "Name ID Mem VCPUs State Time(s)\n" + rows, ""
            if verb in ("domid", "list", "unpause", "pause", "destroy") and dom is None:
                return 1, "", "%s is an invalid domain identifier (rc=-6)\n" % rest[-1]
            if verb == "domid":
                return 0, "%d\n" % dom.domid, ""
            if verb == "list":
                ended = "-" if dom.reason is None else "s"
                flags = "--%s%s%s-" % ("p" if dom.paused else "-", ended, dom.reason or "-")
                return 0, "Name ID Mem VCPUs State Time(s)\n%s %d %s %s %s 0.1\n" % (
                    dom.name, dom.domid, dom.config.get("memory"), dom.config.get("vcpus"), flags), ""
            if verb == "pause":
                dom.paused = True
                return 0, "", ""
            if verb == "unpause":
                self.unpause(dom)
                return 0, "", ""
            if verb == "destroy":
                self.remove(dom)
                return 0, "", ""
            return 1, "", "fake xl: unknown command %s\n" % verb

    def unpause(self, dom):
        dom.paused = False
        if not dom.started:
            dom.started = True
            threading.Thread(target=self.boot, args=(dom,), daemon=True).start()

    def find(self, name):
        return next((d for d in self.domains.values() if d.name == name or str(d.domid) == name), None)

    def create(self, path, paused):
        config = {}
        for line in open(path):
            key, _, value = line.partition("=")
            config[key.strip()] = value.strip().strip('"')
        with open(os.path.join(self.state_dir, "last.cfg"), "w") as copy:
            copy.write(open(path).read())
        if self.find(config["name"]):
            return 1, "", "libxl: error: domain with name %s already exists\n" % config["name"]
        if not os.path.exists(config["kernel"]):
            return 1, "", "libxl: error: kernel %s not found\n" % config["kernel"]
        if os.path.exists(os.path.join(self.state_dir, "fail-create")):
            return 1, "", "libxl: error: cannot allocate 64 MiB for the domain (test)\n"
        dom = Domain(self.next_domid, config)
        self.next_domid += 1
        self.domains[dom.domid] = dom
        if config.get("vif"):
            # netback's device for the guest, in the namespace xl runs in (the test's own); its
            # peer stands in for the guest's end.
            subprocess.run(["ip", "link", "add", "vif%d.0" % dom.domid, "type", "veth",
                            "peer", "name", "vifp%d" % dom.domid], check=True)
        self.write("/local/domain/%d/name" % dom.domid, dom.name)
        if config.get("uuid"):
            self.write("/local/domain/%d/vm" % dom.domid, "/vm/" + config["uuid"])
        self.write("/local/domain/%d/console/tty" % dom.domid, os.ttyname(dom.slave))
        if not paused:
            self.unpause(dom)
        return 0, "", ""

    def remove(self, dom):
        self.domains.pop(dom.domid, None)
        if dom.config.get("vif"):
            subprocess.run(["ip", "link", "del", "vifp%d" % dom.domid], stderr=subprocess.DEVNULL)
        self.rm("/local/domain/%d" % dom.domid)
        os.close(dom.master)
        os.close(dom.slave)
        self.fire("@releaseDomain")

    def end(self, dom, code=None, reason="-"):
        with self.lock:
            if dom.domid not in self.domains:
                return
            if code is not None:
                self.write("/local/domain/%d/data/runx/exit-code" % dom.domid, str(code))
            dom.reason = reason
            self.fire("@releaseDomain")

    # the guest
    def boot(self, dom):
        spec = launch_spec(dom.config.get("ramdisk"))
        say = lambda text: os.write(dom.master, text.encode()) if dom.domid in self.domains else None
        if spec is None:
            cmdline = dom.config.get("extra", "")
            say(cmdline + "\n")
            words = dict(w.split("=", 1) for w in cmdline.split() if "=" in w)
            if words.get("wait"):
                key = "/local/domain/%d/control/shutdown" % dom.domid
                while dom.domid in self.domains and self.data.get(key) != "poweroff":
                    time.sleep(0.02)
            letters = {"poweroff": "-", "reboot": "r", "crash": "c", "watchdog": "w"}
            return self.end(dom, reason=letters[words.get("shutdown", "poweroff")])
        import json
        launch = json.loads(spec)
        process = launch["process"]
        args = process["args"]
        if launch.get("wait_for_start"):
            key = "/local/domain/%d/data/runx/start" % dom.domid
            while dom.domid in self.domains and key not in self.data:
                time.sleep(0.02)
        self.write("/local/domain/%d/data/runx/started" % dom.domid, "1")
        if args[0] == "echo":
            say(" ".join(args[1:]) + "\n")
            return self.end(dom, 0)
        if args[0] == "exit":
            return self.end(dom, int(args[1]))
        if args[0] == "env":
            u = process["user"]
            say("".join(e + "\n" for e in process["env"]))
            say("cwd=%s\nuser=%d:%d\nhostname=%s\n" % (process["cwd"], u["uid"], u["gid"], launch.get("hostname")))
            return self.end(dom, 0)
        if args[0] == "wait":
            key = "/local/domain/%d/data/runx/signal" % dom.domid
            while dom.domid in self.domains:
                with self.lock:
                    value = self.data.pop(key, None)
                if value:
                    say("signal %s\n" % value)
                    return self.end(dom, 128 + int(value))
                time.sleep(0.02)
            return
        if args[0] == "crash":
            return self.end(dom, reason="c")
        say("fake guest: unknown command %s\n" % args[0])
        return self.end(dom, 127)


def launch_spec(ramdisk):
    """The /runx/launch.json of a ramdisk made of gzip'd newc archives (the tests' base is empty)."""
    if not ramdisk or not os.path.exists(ramdisk):
        return None
    try:
        data = gzip.decompress(open(ramdisk, "rb").read())
    except OSError:
        return None
    pos = 0
    while data[pos:pos + 6] == b"070701":
        namesize, filesize = int(data[pos + 94:pos + 102], 16), int(data[pos + 54:pos + 62], 16)
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        body = (pos + 110 + namesize + 3) & ~3
        if name == "runx/launch.json":
            return data[body:body + filesize].decode()
        pos = (body + filesize + 3) & ~3
    return None


def send(conn, kind, req, payload):
    # Callers hold the store's lock, so replies and events never interleave on a connection.
    try:
        conn.sendall(struct.pack("=IIII", kind, req, 0, len(payload)) + payload)
    except OSError:
        pass


def serve(store, conn):
    try:
        serve_requests(store, conn)
    except OSError:
        pass
    with store.lock:
        store.watches = [w for w in store.watches if w[0] is not conn]


def serve_requests(store, conn):
    while True:
        header = recv(conn, 16)
        if header is None:
            break
        kind, req, _, length = struct.unpack("=IIII", header)
        parts = recv(conn, length).split(b"\0")
        with store.lock:
            if kind == XS_READ:
                value = store.data.get(parts[0].decode())
                if value is None:
                    send(conn, XS_ERROR, req, b"ENOENT\0")
                else:
                    send(conn, XS_READ, req, value.encode())
            elif kind == XS_DIRECTORY:
                prefix = parts[0].decode().rstrip("/") + "/"
                children = sorted({k[len(prefix):].split("/")[0] for k in store.data if k.startswith(prefix)})
                send(conn, XS_DIRECTORY, req, b"".join(c.encode() + b"\0" for c in children))
            elif kind == XS_WRITE:
                store.write(parts[0].decode(), b"\0".join(parts[1:]).decode())
                send(conn, XS_WRITE, req, b"OK\0")
            elif kind == XS_RM:
                store.rm(parts[0].decode())
                send(conn, XS_RM, req, b"OK\0")
            elif kind == XS_WATCH:
                send(conn, XS_WATCH, req, b"OK\0")
                store.watch(conn, parts[0].decode(), parts[1].decode())
            elif kind == XS_DEBUG:
                rc, out, err = store.xl([p.decode() for p in parts if p])
                send(conn, XS_DEBUG, req, b"%d\0%s\0%s\0" % (rc, out.encode(), err.encode()))
            else:
                send(conn, XS_ERROR, req, b"ENOSYS\0")


def recv(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def daemon(path, state_dir):
    store = Store(state_dir)
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(64)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(store, conn), daemon=True).start()


def xl(args):
    conn = socket.socket(socket.AF_UNIX)
    conn.connect(os.environ["XENSTORED_PATH"])
    payload = b"".join(a.encode() + b"\0" for a in args)
    conn.sendall(struct.pack("=IIII", XS_DEBUG, 1, 0, len(payload)) + payload)
    _, _, _, length = struct.unpack("=IIII", recv(conn, 16))
    rc, out, err = recv(conn, length).split(b"\0")[:3]
    slow = os.path.join(os.environ.get("FAKE_XEN_STATE", ""), "slow-create")
    if args[0] == "create" and os.path.exists(slow):
        time.sleep(float(open(slow).read()))
    sys.stdout.write(out.decode())
    sys.stderr.write(err.decode())
    return int(rc)


if __name__ == "__main__":
    if os.path.basename(sys.argv[0]) == "xl":
        sys.exit(xl(sys.argv[1:]))
    daemon(sys.argv[1], sys.argv[2])

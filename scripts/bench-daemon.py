#!/usr/bin/env python3
"""Benchmarks of `gitmesh daemon` on a log of N events.

Measures: counting the log at start, publish -> /events/stream latency,
/metrics and /status scrape time, /trace (one scan of the log).
Usage: scripts/bench-daemon.py [N] (default 100000); GITMESH_BIN selects the binary
(default target/release/gitmesh).
"""
import json, os, socket, statistics, subprocess, sys, tempfile, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
BIN = os.environ.get("GITMESH_BIN", "target/release/gitmesh")


def gm(root, *args, stdin=None):
    r = subprocess.run([BIN, "--root", root, "--json", *args], input=stdin,
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def get(addr, path):
    host, port = addr.rsplit(":", 1)
    t = time.perf_counter()
    with socket.create_connection((host, int(port))) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(1 << 16):
            data += chunk
    return time.perf_counter() - t, data


def main():
    tmp = tempfile.mkdtemp(prefix="gitmesh-bench-")
    root = os.path.join(tmp, "b1")
    gm(root, "mesh-init", "--node-id", "b1")
    t = time.perf_counter()
    batch = 10_000
    for start in range(0, N, batch):
        lines = "".join(json.dumps({"topic": ["routing", "scheduling", "monitoring"][i % 3],
                                    "event_type": "bench.event", "payload": {"i": i}}) + "\n"
                        for i in range(start, min(N, start + batch)))
        gm(root, "mesh-publish", "--stdin", stdin=lines)
    print(f"setup: {N} events published in {time.perf_counter() - t:.1f}s")

    t0 = time.perf_counter()
    d = subprocess.Popen([BIN, "--root", root, "--log-format", "json", "daemon",
                          "--listen", "127.0.0.1:0", "--interval", "1h"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lock = os.path.join(root, "state/event_mesh/daemon.lock")
        addr = None
        while time.perf_counter() - t0 < 120:
            try:
                info = json.load(open(lock))
                addr = info.get("listen")
                if addr and get(addr, "/status")[1].startswith(b"HTTP/1.1 200"):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        print(f"daemon start to first /status answer: {(time.perf_counter() - t0) * 1000:.0f} ms")

        for path in ["/metrics", "/status", f"/events/recent?limit=100"]:
            times = [get(addr, path)[0] * 1000 for _ in range(30)]
            print(f"GET {path}: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms (30 requests)")

        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
        s.sendall(f"GET /events/stream HTTP/1.1\r\nHost: {addr}\r\n\r\n".encode())
        s.settimeout(10)
        buf = b""
        lat, pub = [], []
        for i in range(30):
            t = time.perf_counter()
            ev = gm(root, "mesh-publish", "--topic", "routing", "--event-type", "bench.live",
                    "--payload-json", json.dumps({"n": i}))
            pub.append((time.perf_counter() - t) * 1000)
            eid = ev["event"]["event_id"].encode()
            while eid not in buf:
                buf += s.recv(1 << 16)
            lat.append((time.perf_counter() - t) * 1000)
            buf = buf[buf.index(eid):]
        s.close()
        print(f"publish -> /events/stream: median {statistics.median(lat):.1f} ms, max {max(lat):.1f} ms "
              f"(the mesh-publish process alone: median {statistics.median(pub):.1f} ms)")

        tid = ev["event"]["event_id"]
        times = [get(addr, f"/trace/{tid}")[0] * 1000 for _ in range(3)]
        print(f"GET /trace (one scan of {N + 30} events): median {statistics.median(times):.0f} ms")
    finally:
        d.terminate()
        try:
            _, err = d.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            d.kill()
            _, err = d.communicate()
    for line in err.splitlines():
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if v.get("fields", {}).get("message") == "counted the event log":
            print(f"counting the log at start: {v['fields']['events']} events in {v['fields']['elapsed_ms']} ms")
    print(f"daemon exit code after SIGTERM: {d.returncode}")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()

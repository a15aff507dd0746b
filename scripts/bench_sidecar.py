#!/usr/bin/env python3
"""Sidecar latencies of meshinit against a real Envoy, for scripts/bench.

  bench_sidecar.py MESHINIT ENVOY RUNS

Per run: a fresh Envoy and meshinit start together; this harness polls Envoy's /ready
about every millisecond and takes the send time of the last answer that was not 200 as the
moment Envoy turned ready (so the figures err on the slow side). The task is `date +%s%N`:
its output is the moment of its exec (plus date's own start-up, ~0.5 ms). Printed:
  ready -> exec   Envoy turning ready to the task's exec
  exit -> exit    the task's exit to meshinit's, including the quit request
  warm start      meshinit's start to the task's exec with Envoy already ready
(meshinit beside Istio's own waiter, against the real pilot-agent: bench_istio.py).
"""
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

meshinit, envoy, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
summary_path = sys.argv[4] if len(sys.argv) > 4 else None
work = tempfile.mkdtemp()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready_status(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head = s.recv(12)
            return int(head[9:12])
    except (OSError, ValueError):
        return None


def start_envoy(port):
    config = os.path.join(work, "envoy-%d.yaml" % port)
    with open(config, "w") as f:
        f.write("admin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: %d }\n" % port)
    return subprocess.Popen(
        [envoy, "-c", config, "--disable-hot-restart", "--concurrency", "1", "-l", "critical"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def meshinit_cmd(port):
    return [meshinit, "--ready-url", "http://127.0.0.1:%d/ready" % port,
            "--quit-url", "http://127.0.0.1:%d/quitquitquit" % port,
            "--log", "info", "--", "date", "+%s%N"]


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


ready_to_exec, exit_to_exit, quit_ms, failures = [], [], [], 0
for _ in range(runs):
    port = free_port()
    m = subprocess.Popen(meshinit_cmd(port), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    e = start_envoy(port)
    last_not_ready = time.time_ns()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sent = time.time_ns()
        if ready_status(port) == 200:
            break
        last_not_ready = sent
        time.sleep(0.0008)
    try:
        out, err = m.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        m.kill()
        out, err = m.communicate()
    t_exit = time.time_ns()
    try:
        e.wait(timeout=10)
    except subprocess.TimeoutExpired:
        failures += 1
    stop(e)
    if m.returncode != 0 or not out.strip().isdigit():
        failures += 1
        continue
    t_exec = int(out.strip())
    ready_to_exec.append((t_exec - last_not_ready) / 1e6)
    exit_to_exit.append((t_exit - t_exec) / 1e6)
    found = re.search(rb"sidecar quit via \S+ \(HTTP 200\) in (\d+)ms", err)
    if found:
        quit_ms.append(int(found.group(1)))

# Warm start: Envoy is already ready when meshinit starts.
warm = []
port = free_port()
e = start_envoy(port)
deadline = time.monotonic() + 20
while ready_status(port) != 200 and time.monotonic() < deadline:
    time.sleep(0.01)
cmd = meshinit_cmd(port)
# Envoy stays up for the next run: a quit URL where nothing listens, asked once (no
# --quit-window for a sidecar that never comes back).
cmd[cmd.index("--quit-url") + 1] = "http://127.0.0.1:9/none"
cmd[cmd.index("--quit-url") + 2:cmd.index("--quit-url") + 2] = ["--quit-window", "0"]
for _ in range(runs):
    t0 = time.time_ns()
    out = subprocess.run(cmd + [], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, MESHINIT_KILL_FALLBACK="false")).stdout
    if out.strip().isdigit():
        warm.append((int(out.strip()) - t0) / 1e6)
stop(e)


def cpu_while_waiting(ready_url, seconds=10.0):
    """meshinit's own CPU (user + system, % of one core) while it polls ready_url."""
    m = subprocess.Popen([meshinit, "--ready-url", ready_url, "--quit-url", "http://127.0.0.1:9/none",
                          "--quit-window", "0", "--kill-fallback=false", "--timeout", "60s", "--log", "error", "--", "true"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tick = os.sysconf("SC_CLK_TCK")

    def used():
        fields = open("/proc/%d/stat" % m.pid).read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    time.sleep(0.5)
    t0, c0 = time.monotonic(), used()
    time.sleep(seconds)
    t1, c1 = time.monotonic(), used()
    m.terminate()
    m.wait()
    return 100 * (c1 - c0) / (t1 - t0)


def answer_503(listener):
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            try:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            except OSError:
                pass


import threading
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
threading.Thread(target=answer_503, args=(listener,), daemon=True).start()
cpu_refused = cpu_while_waiting("http://127.0.0.1:%d/ready" % free_port())
cpu_503 = cpu_while_waiting("http://127.0.0.1:%d/ready" % listener.getsockname()[1])
listener.close()

summary = {"cpu_refused": cpu_refused, "cpu_503": cpu_503}


def row(name, values, note="", key=None):
    if not values:
        print("%-34s no data" % name)
        return
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    print("%-34s %8.2f %8.2f %8.2f  %s" % (name, statistics.median(values), p95, values[-1], note))
    if key:
        summary[key] = {"median": statistics.median(values), "p95": p95, "max": values[-1]}


print("%-34s %8s %8s %8s" % ("ms, over %d runs" % runs, "median", "p95", "max"))
row("ready -> task exec (meshinit)", ready_to_exec, key="ready_to_exec")
row("task exit -> meshinit exit", exit_to_exit, "includes the quit request", key="exit_to_exit")
row("  of which the quit request", quit_ms, "(meshinit's log, whole ms)", key="quit")
row("meshinit start -> exec, warm", warm, "Envoy already ready", key="warm")
print("CPU while waiting (10 s each): %.2f %% of a core against a refused port, %.2f %% against 503"
      % (cpu_refused, cpu_503))
print("failed runs: %d" % failures)
summary["failures"] = failures
if summary_path:
    import json
    with open(summary_path, "w") as f:
        json.dump(summary, f)

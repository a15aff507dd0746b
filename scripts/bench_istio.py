#!/usr/bin/env python3
"""meshinit beside Istio's own waiter, `pilot-agent wait`, against the real pilot-agent and
Envoy, for scripts/bench. Run inside a network namespace of its own (scripts/bench runs it
under `unshare --net`): the agent takes Istio's fixed ports.

  bench_istio.py MESHINIT PILOT_AGENT BOOTSTRAP XDS ENVOY RUNS SUMMARY.json

Per run and waiter: a fresh pilot-agent starts (its Envoy with it), the waiter starts, then
the tests' xDS server, which makes the agent ready. This harness polls the agent's
/healthz/ready on 15020 about every millisecond and takes the send time of the last answer
that was not 200 as the moment it turned ready (so the figures err on the slow side). The
task is `date +%s%N`: its output is the moment of its exec. `pilot-agent wait` runs as
`sh -c 'pilot-agent wait && exec date +%s%N'` (it polls 15021 every 500 ms).
Also: each waiter's start to the task's exec when the agent is already ready (for
pilot-agent wait, its start to its exit), and its peak RSS while it waits.
"""
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

meshinit, agent_bin, bootstrap, xds_bin, envoy, runs, summary_path = sys.argv[1:8]
runs = int(runs)
work = tempfile.mkdtemp()
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def status(port, path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
            return int(s.recv(12)[9:12])
    except (OSError, ValueError):
        return None


def post_quit():
    try:
        with socket.create_connection(("127.0.0.1", 15020), timeout=1) as s:
            s.sendall(b"POST /quitquitquit HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            s.recv(64)
    except OSError:
        pass


def start_agent():
    cwd = tempfile.mkdtemp(dir=work)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "POD_NAME": "bench", "POD_NAMESPACE": "default", "INSTANCE_IP": "127.0.0.1",
        "CLOUD_PLATFORM": "none", "FILE_MOUNTED_CERTS": "true", "ISTIO_BOOTSTRAP": bootstrap,
        "PROXY_CONFIG": json.dumps({
            "discoveryAddress": "127.0.0.1:15010", "controlPlaneAuthPolicy": "NONE",
            "binaryPath": envoy, "terminationDrainDuration": "1s"}),
    }
    agent = subprocess.Popen([agent_bin, "proxy", "sidecar"], cwd=cwd, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.monotonic() + 20
    while status(15020, "/healthz/ready") is None:
        if time.monotonic() > deadline:
            raise SystemExit("bench_istio.py: pilot-agent's 15020 did not answer in 20 s")
        time.sleep(0.01)
    return agent


def end(proc, limit=10):
    """Waits for `proc` to exit by itself; ends its session (its Envoy) either way."""
    try:
        proc.wait(timeout=limit)
        ok = True
    except subprocess.TimeoutExpired:
        ok = False
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    return ok


def start_xds():
    return subprocess.Popen([xds_bin, "-addr", "127.0.0.1:15010"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


WAITERS = {
    "meshinit": [meshinit, "--mesh", "istio", "--", "date", "+%s%N"],
    "pilot-agent wait": ["sh", "-c", "%s wait >/dev/null 2>&1 && exec date +%%s%%N" % agent_bin],
}
summary = {"runs": runs, "failures": 0, "waiters": {}}
for name, cmd in WAITERS.items():
    ready_to_exec = []
    for _ in range(runs):
        agent = start_agent()
        waiter = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        time.sleep(0.2)
        xds = start_xds()
        last_not_ready = time.time_ns()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sent = time.time_ns()
            if status(15020, "/healthz/ready") == 200:
                break
            last_not_ready = sent
            time.sleep(0.0008)
        try:
            out, _ = waiter.communicate(timeout=70)
        except subprocess.TimeoutExpired:
            waiter.kill()
            out, _ = waiter.communicate()
        if name != "meshinit":
            post_quit()
        if not end(agent) or waiter.returncode != 0 or not out.strip().isdigit():
            summary["failures"] += 1
        else:
            ready_to_exec.append((int(out.strip()) - last_not_ready) / 1e6)
        xds.terminate()
        xds.wait()
    summary["waiters"][name] = {"ready_to_exec": ready_to_exec}

# Warm start and RSS with one agent: ready for the first, never ready (no xDS) for RSS.
agent = start_agent()
xds = start_xds()
deadline = time.monotonic() + 20
while status(15020, "/healthz/ready") != 200 and time.monotonic() < deadline:
    time.sleep(0.01)
warm_cmds = {
    "meshinit": [meshinit, "--mesh", "istio", "--keep-sidecar", "always", "--", "date", "+%s%N"],
    "pilot-agent wait": [agent_bin, "wait"],
}
for name, cmd in warm_cmds.items():
    warm = []
    for _ in range(runs):
        t0 = time.time_ns()
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        t1 = time.time_ns()
        # meshinit: its start to the task's exec; pilot-agent wait: its start to its exit.
        mark = int(out.strip()) if out.strip().isdigit() else t1
        warm.append((mark - t0) / 1e6)
    summary["waiters"][name]["warm"] = warm
post_quit()
end(agent)
xds.terminate()
xds.wait()

agent = start_agent()
for name, cmd in WAITERS.items():
    proc = subprocess.Popen(cmd if name == "meshinit" else [agent_bin, "wait"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    with open("/proc/%d/status" % proc.pid) as f:
        hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    summary["waiters"][name]["rss_kb"] = hwm
    summary["waiters"][name]["size"] = os.path.getsize(meshinit if name == "meshinit" else agent_bin)
    proc.terminate()
    proc.wait()
post_quit()
end(agent)


def figures(values):
    values = sorted(values)
    if not values:
        return None
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return {"median": statistics.median(values), "p95": p95, "max": values[-1]}


for name, w in summary["waiters"].items():
    w["ready_to_exec"] = figures(w["ready_to_exec"])
    w["warm"] = figures(w["warm"])
with open(summary_path, "w") as f:
    json.dump(summary, f)
print("%-18s %-26s %-26s %12s %9s" % ("waiter", "agent ready -> exec, ms", "warm start -> exec, ms",
                                      "bytes", "RSS kB"))
for name, w in summary["waiters"].items():
    r, m = w["ready_to_exec"], w["warm"]
    print("%-18s %-26s %-26s %12d %9d" % (
        name,
        "median %.2f, p95 %.2f" % (r["median"], r["p95"]) if r else "no data",
        "median %.2f, p95 %.2f" % (m["median"], m["p95"]) if m else "no data",
        w["size"], w["rss_kb"]))
print("failed runs: %d" % summary["failures"])

"""The cluster's Jobs and Pods as they change, for tests/cluster.rs (scripts/cluster watch).

Watches both through the API server with the admin's client certificate and prints, for each
event, a record: "event UNIX_SECONDS", then "job TYPE NAMESPACE NAME ACTIVE SUCCEEDED FAILED
UNCOUNTED CONDITIONS" (UNCOUNTED the uids of uncountedTerminatedPods, CONDITIONS
Type=Status/Reason joined by commas), or "pod TYPE NAMESPACE NAME JOB PHASE INDEX DELETING"
followed by one "container NAME KIND STATE EXIT RESTARTS REASON LAST_EXIT MESSAGE" line per
container (KIND init or main; STATE running, waiting or terminated; EXIT and LAST_EXIT - unless
terminated), then "end". TYPE is ADDED, MODIFIED or DELETED. Spaces, tabs and newlines in a
word are written \\s, \\t, \\n; an empty word is -. Runs until standard input closes. A
watch that fails is retried every 0.5 s ("retrying PATH: ERROR"); when a path's tries have
not listed it once in the GIVE_UP seconds since the first of them failed (the API server is
gone), the watcher says "gave up PATH: ERROR" and exits 69.

    python3 scripts/cluster_watch.py API_URL CA CERT KEY
"""

import json
import os
import select
import ssl
import sys
import threading
import time
import urllib.request

LOCK = threading.Lock()
# Longer than the API server takes to come back from a hiccup, far shorter than a test.
GIVE_UP = 60


def word(value):
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace(" ", "\\s")
    return text or "-"


def job_lines(kind, job):
    meta, status = job["metadata"], job.get("status") or {}
    uncounted = status.get("uncountedTerminatedPods") or {}
    uids = (uncounted.get("succeeded") or []) + (uncounted.get("failed") or [])
    conditions = ",".join(
        "%s=%s/%s" % (c.get("type"), c.get("status"), c.get("reason") or "")
        for c in status.get("conditions") or []
    )
    return [" ".join(word(w) for w in ("job", kind, meta.get("namespace"), meta["name"],
                                        status.get("active", 0), status.get("succeeded", 0),
                                        status.get("failed", 0), ",".join(uids), conditions))]


def pod_lines(kind, pod):
    meta, status = pod["metadata"], pod.get("status") or {}
    owner = next((o["name"] for o in meta.get("ownerReferences") or [] if o.get("kind") == "Job"), "")
    index = (meta.get("annotations") or {}).get("batch.kubernetes.io/job-completion-index", "")
    lines = [" ".join(word(w) for w in ("pod", kind, meta.get("namespace"), meta["name"], owner,
                                        status.get("phase"), index,
                                        "yes" if meta.get("deletionTimestamp") else "no"))]
    for which, key in (("init", "initContainerStatuses"), ("main", "containerStatuses")):
        for c in status.get(key) or []:
            state = c.get("state") or {}
            now = next(iter(state), "waiting")
            detail = state.get(now) or {}
            last = (c.get("lastState") or {}).get("terminated") or {}
            lines.append(" ".join(word(w) for w in (
                "container", c["name"], which, now,
                detail.get("exitCode", "-") if now == "terminated" else "-",
                c.get("restartCount", 0), detail.get("reason"), last.get("exitCode", "-"),
                detail.get("message"))))
    return lines


def watch(api, context, path, lines_of, succeeded):
    """Lists, then watches from the list's version; again from a fresh list when a watch ends.
    Calls succeeded() after each list that succeeds."""
    while True:
        with urllib.request.urlopen(api + path, context=context, timeout=30) as r:
            listed = json.load(r)
        succeeded()
        emit(lines_of("ADDED", item) for item in listed.get("items") or [])
        version = listed["metadata"]["resourceVersion"]
        url = "%s%s?watch=1&resourceVersion=%s&allowWatchBookmarks=false" % (api, path, version)
        with urllib.request.urlopen(url, context=context, timeout=600) as r:
            for raw in r:
                event = json.loads(raw)
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    emit([lines_of(event["type"], event["object"])])
                elif event.get("type") == "ERROR":
                    break


def emit(records):
    with LOCK:
        for lines in records:
            print("event %.3f" % time.time(), *lines, "end", sep="\n", flush=True)


def main():
    api, ca, cert, key = sys.argv[1:5]
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)

    def run(path, lines_of):
        failing_since = None

        def succeeded():
            nonlocal failing_since
            failing_since = None

        while True:
            try:
                watch(api, context, path, lines_of, succeeded)
            except Exception as e:
                now = time.monotonic()
                failing_since = failing_since or now
                with LOCK:
                    if now - failing_since > GIVE_UP:
                        print("gave up %s: %s" % (path, word(e)), flush=True)
                        os._exit(69)
                    print("retrying %s: %s" % (path, word(e)), flush=True)
                time.sleep(0.5)

    for path, lines_of in (("/apis/batch/v1/jobs", job_lines), ("/api/v1/pods", pod_lines)):
        threading.Thread(target=run, args=(path, lines_of), daemon=True).start()
    while not select.select([sys.stdin], [], [], 1)[0]:
        pass


if __name__ == "__main__":
    main()

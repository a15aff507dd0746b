#!/usr/bin/env python3
"""Writes the SPDX 2.3 JSON SBOM of meshinit's shipped binary: meshinit and every crate it
links (Cargo.lock's normal dependencies, not dev or build-only ones), with version,
licence, crates.io checksum and package URL. Reproducible: everything comes from
`cargo metadata --locked --offline` and the arguments; the time is SOURCE_DATE_EPOCH.

  sbom.py VERSION REVISION EPOCH > meshinit-VERSION.spdx.json
"""
import json
import subprocess
import sys
import time
import tomllib

version, revision, epoch = sys.argv[1], sys.argv[2], int(sys.argv[3])
meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--locked", "--offline",
     "--filter-platform", "x86_64-unknown-linux-musl"],
    check=True, capture_output=True, text=True).stdout)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
with open("Cargo.lock", "rb") as lock:
    checksums = {(p["name"], p["version"]): p["checksum"]
                 for p in tomllib.load(lock)["package"] if "checksum" in p}

def activated(node, dep):
    """Whether `node` really uses `dep`: cargo metadata also lists an optional dependency
    that only a weak feature (`regex?/std`) names, which enables nothing."""
    name = packages[dep["pkg"]]["name"]
    declared = [d for d in packages[node]["dependencies"]
                if (d.get("rename") or d["name"]).replace("-", "_") == dep["name"]
                and d["kind"] is None]
    if not any(d["optional"] for d in declared):
        return True
    enabled = set(nodes[node]["features"])
    table = packages[node]["features"]
    strong = {item for feature in enabled for item in table.get(feature, [])
              if "?/" not in item}
    return (name in enabled and name not in table) or "dep:" + name in strong or any(
        item.split("/")[0] == name for item in strong if "/" in item)


# What the binary links: from meshinit along normal (not dev, not build) dependencies.
root = meta["resolve"]["root"]
linked, todo = set(), [root]
while todo:
    node = todo.pop()
    if node in linked:
        continue
    linked.add(node)
    for dep in nodes[node]["deps"]:
        if any(kind["kind"] is None for kind in dep["dep_kinds"]) and activated(node, dep):
            todo.append(dep["pkg"])


def spdx_id(package):
    return "SPDXRef-Package-%s-%s" % (package["name"], package["version"].replace("+", "-"))


entries = []
for pid in sorted(linked, key=lambda i: (packages[i]["name"], packages[i]["version"])):
    p = packages[pid]
    entry = {
        "SPDXID": spdx_id(p),
        "name": p["name"],
        "versionInfo": p["version"],
        "downloadLocation": "NOASSERTION" if pid == root else
            "https://crates.io/api/v1/crates/%s/%s/download" % (p["name"], p["version"]),
        "licenseDeclared": p.get("license") or "NOASSERTION",
        "licenseConcluded": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "filesAnalyzed": False,
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": "pkg:cargo/%s@%s" % (p["name"], p["version"]),
        }],
    }
    checksum = checksums.get((p["name"], p["version"]))
    if checksum:
        entry["checksums"] = [{"algorithm": "SHA256", "checksumValue": checksum}]
    entries.append(entry)

relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                  "relatedSpdxElement": spdx_id(packages[root])}]
for pid in sorted(linked):
    for dep in sorted(nodes[pid]["deps"], key=lambda d: d["pkg"]):
        if dep["pkg"] in linked and any(k["kind"] is None for k in dep["dep_kinds"]):
            relationships.append({"spdxElementId": spdx_id(packages[pid]),
                                  "relationshipType": "DEPENDS_ON",
                                  "relatedSpdxElement": spdx_id(packages[dep["pkg"]])})

document = {
    "spdxVersion": "SPDX-2.3",
    "dataLicense": "CC0-1.0",
    "SPDXID": "SPDXRef-DOCUMENT",
    "name": "meshinit-%s" % version,
    "documentNamespace": "https://github.com/meshinit/meshinit/spdx/%s/%s" % (version, revision),
    "creationInfo": {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
        "creators": ["Tool: meshinit scripts/sbom.py"],
    },
    "packages": entries,
    "relationships": relationships,
}
json.dump(document, sys.stdout, indent=2, sort_keys=True)
sys.stdout.write("\n")

#!/usr/bin/env python3
"""Writes meshinit's image as an OCI image layout, byte for byte reproducibly.

  oci_layout.py OUT_DIR ARCHIVE EPOCH VERSION REVISION SOURCE amd64=BIN arm64=BIN

One layer per platform holding exactly /meshinit (root-owned, 0755, mtime EPOCH), a config
with ENTRYPOINT ["/meshinit", "--"] and PATH, one image index for both platforms tagged
`latest` in OUT_DIR/index.json (each platform's manifest also as `latest-amd64` and
`latest-arm64`), and ARCHIVE: the same layout as an oci-archive tar.
Everything is derived from the inputs: sorted JSON, fixed times and owners, gzip with no
name and mtime 0. Nothing of the machine or the day enters.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import time

out_dir, archive, epoch, version, revision, source = sys.argv[1:7]
binaries = dict(arg.split("=", 1) for arg in sys.argv[7:])
epoch = int(epoch)
created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
PLATFORMS = {
    "amd64": {"architecture": "amd64", "os": "linux"},
    "arm64": {"architecture": "arm64", "os": "linux", "variant": "v8"},
}
ANNOTATIONS = {
    "org.opencontainers.image.created": created,
    "org.opencontainers.image.description": "meshinit: PID 1 for jobs in a service mesh",
    "org.opencontainers.image.licenses": "MIT",
    "org.opencontainers.image.revision": revision,
    "org.opencontainers.image.source": source,
    "org.opencontainers.image.title": "meshinit",
    "org.opencontainers.image.version": version,
}
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def put_blob(data, media_type, **extra):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(out_dir, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    descriptor = {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}
    descriptor.update(extra)
    return descriptor


def fixed(info):
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = epoch
    return info


def layer_tar(binary):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        with open(binary, "rb") as f:
            data = f.read()
        info = fixed(tarfile.TarInfo("meshinit"))
        info.mode = 0o755
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzipped(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


os.makedirs(os.path.join(out_dir, "blobs", "sha256"))
manifests = []
for arch in sorted(binaries):
    platform = PLATFORMS[arch]
    tar = layer_tar(binaries[arch])
    layer = put_blob(gzipped(tar), "application/vnd.oci.image.layer.v1.tar+gzip")
    config = dict(platform)
    config.update({
        "created": created,
        "config": {
            "Entrypoint": ["/meshinit", "--"],
            "Env": [PATH],
            "Labels": ANNOTATIONS,
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
        "history": [{"created": created, "created_by": "scripts/image: /meshinit, static musl " + arch}],
    })
    config_descriptor = put_blob(canonical(config), "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_descriptor,
        "layers": [layer],
        "annotations": ANNOTATIONS,
    }
    manifests.append(put_blob(canonical(manifest), "application/vnd.oci.image.manifest.v1+json",
                              platform=platform))

index = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": manifests,
    "annotations": ANNOTATIONS,
}
index_descriptor = put_blob(canonical(index), "application/vnd.oci.image.index.v1+json",
                            annotations={"org.opencontainers.image.ref.name": "latest"})
# `latest` is the multi-platform index; `latest-ARCH` name each platform's manifest for
# tools that cannot choose a platform from an index (umoci).
refs = [index_descriptor]
for arch, manifest in zip(sorted(binaries), manifests):
    ref = dict(manifest)
    ref["annotations"] = {"org.opencontainers.image.ref.name": "latest-" + arch}
    refs.append(ref)
with open(os.path.join(out_dir, "index.json"), "wb") as f:
    f.write(canonical({"schemaVersion": 2,
                       "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": refs}))
with open(os.path.join(out_dir, "oci-layout"), "wb") as f:
    f.write(canonical({"imageLayoutVersion": "1.0.0"}))

# The oci-archive: the layout's files in sorted order, with the same fixed metadata.
with tarfile.open(archive, mode="w", format=tarfile.USTAR_FORMAT) as tar:
    entries = []
    for root, dirs, files in os.walk(out_dir):
        for name in dirs + files:
            entries.append(os.path.relpath(os.path.join(root, name), out_dir))
    for rel in sorted(entries):
        full = os.path.join(out_dir, rel)
        info = fixed(tar.gettarinfo(full, arcname=rel))
        info.mode = 0o755 if info.isdir() else 0o644
        if info.isdir():
            tar.addfile(info)
        else:
            with open(full, "rb") as f:
                tar.addfile(info, f)
print(index_descriptor["digest"])

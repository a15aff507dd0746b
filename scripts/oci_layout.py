#!/usr/bin/env python3
"""Writes meshinit's image as an OCI image layout and archives, byte for byte reproducibly.

  oci_layout.py OUT_DIR ARCHIVE_DIR EPOCH VERSION REVISION SOURCE IMAGE amd64=BIN arm64=BIN

One layer per platform holding exactly /meshinit (root-owned, 0755, mtime EPOCH), a config
with ENTRYPOINT ["/meshinit", "--"] and PATH, one image index for both platforms.
OUT_DIR is an OCI layout whose index.json names the index VERSION and `latest`, and each
platform's manifest VERSION-ARCH and latest-ARCH (for tools that cannot choose a platform
from an index, such as umoci). ARCHIVE_DIR receives:
  meshinit-VERSION.oci.tar              the multi-platform image, for pushing (skopeo copy
                                        --all) and for podman; one image, named VERSION
  meshinit-VERSION-linux-ARCH.tar       one platform, loadable by `docker load` (its
                                        manifest.json names IMAGE:VERSION and IMAGE:latest),
                                        `podman load`, `ctr images import` and skopeo
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

out_dir, archive_dir, epoch, version, revision, source, image = sys.argv[1:8]
binaries = dict(arg.split("=", 1) for arg in sys.argv[8:])
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


BLOBS = {}


def put_blob(data, media_type, **extra):
    digest = hashlib.sha256(data).hexdigest()
    BLOBS[digest] = data
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
per_arch = {}
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
    descriptor = put_blob(canonical(manifest), "application/vnd.oci.image.manifest.v1+json",
                          platform=platform)
    manifests.append(descriptor)
    per_arch[arch] = (descriptor, config_descriptor, layer)

index = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": manifests,
    "annotations": ANNOTATIONS,
}
index_descriptor = put_blob(canonical(index), "application/vnd.oci.image.index.v1+json")


def named(descriptor, tag):
    """`descriptor` as an entry of an index.json, named `tag` (and, for containerd, the
    image's full name)."""
    entry = dict(descriptor)
    entry["annotations"] = {
        "org.opencontainers.image.ref.name": tag,
        "io.containerd.image.name": image + ":" + tag,
    }
    return entry


def index_json(entries):
    return canonical({"schemaVersion": 2,
                      "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": entries})


LAYOUT = canonical({"imageLayoutVersion": "1.0.0"})
refs = [named(index_descriptor, version), named(index_descriptor, "latest")]
for arch in sorted(per_arch):
    refs.append(named(per_arch[arch][0], version + "-" + arch))
    refs.append(named(per_arch[arch][0], "latest-" + arch))
with open(os.path.join(out_dir, "index.json"), "wb") as f:
    f.write(index_json(refs))
with open(os.path.join(out_dir, "oci-layout"), "wb") as f:
    f.write(LAYOUT)


def write_archive(path, files):
    """A tar of `files` (name -> bytes) and their directories, sorted, fixed metadata."""
    names = set(files)
    for name in files:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            names.add("/".join(parts[:i]) + "/")
    with tarfile.open(path, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(names):
            info = fixed(tarfile.TarInfo(name.rstrip("/")))
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = len(files[name])
                tar.addfile(info, io.BytesIO(files[name]))


def blob_files(descriptors):
    return {"blobs/sha256/" + d["digest"].split(":")[1]: BLOBS[d["digest"].split(":")[1]]
            for d in descriptors}


# The multi-platform archive: every blob, one image in index.json.
everything = blob_files([index_descriptor] + [d for trio in per_arch.values() for d in trio])
everything["oci-layout"] = LAYOUT
everything["index.json"] = index_json([named(index_descriptor, version)])
write_archive(os.path.join(archive_dir, "meshinit-%s.oci.tar" % version), everything)

# One archive per platform: an OCI layout and, beside it, Docker's manifest.json.
for arch, (manifest, config, layer) in sorted(per_arch.items()):
    files = blob_files([manifest, config, layer])
    files["oci-layout"] = LAYOUT
    files["index.json"] = index_json([named(manifest, version)])
    files["manifest.json"] = canonical([{
        "Config": "blobs/sha256/" + config["digest"].split(":")[1],
        "RepoTags": [image + ":" + version, image + ":latest"],
        "Layers": ["blobs/sha256/" + layer["digest"].split(":")[1]],
    }])
    write_archive(os.path.join(archive_dir, "meshinit-%s-linux-%s.tar" % (version, arch)), files)
print(index_descriptor["digest"])

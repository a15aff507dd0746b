#!/usr/bin/python3
"""What one istiod of scripts/cluster reads, rendered from Istio's own chart in the module
pilot-discovery is built from (manifests/charts/istio-control/istio-discovery), instead of a
Helm install:

  OUT/var/lib/istio/inject/config   the injector's `config`, and
  OUT/var/lib/istio/inject/values   its `values` (JSON), both as the chart's
                                    templates/istiod-injector-configmap.yaml renders the two keys
                                    of the istio-sidecar-injector ConfigMap (istiod reads these
                                    files from its working folder before that ConfigMap);
  OUT/mesh.yaml                     the mesh configuration (istiod's --meshConfig);

and prints the proxy image the injector writes into pods, <hub>/<image>:<tag> of the values.

  istio_config.py MODULE OUT ISTIOD_ADDRESS

The values are the chart's defaults (values.yaml, no profile) with only these overrides, each a
difference from a stock install that README names:
  global.imagePullPolicy IfNotPresent  the chart's tag is `latest`, which Kubernetes pulls
                                       Always; there is no registry here, the image is imported
  global.caAddress ISTIOD_ADDRESS      no DNS and no Service for istiod here: the pods reach it
                                       at the node's bridge address (its certificate names it)
The mesh configuration is what the chart's templates/configmap.yaml writes by default
(interception REDIRECT: istio-init runs, as in most clusters), with discoveryAddress
ISTIOD_ADDRESS, without the Prometheus metrics provider (its istio.stats filter is Istio's
Envoy's own), and always proxyMetadata CLOUD_PLATFORM=none: without it pilot-agent in every
pod probes the clouds' metadata address, 169.254.169.254.
Debian's python3 with python3-yaml (scripts/setup).
"""
import json
import os
import sys

import yaml

CHART = "manifests/charts/istio-control/istio-discovery"
# The templates the chart puts in `config`, under these names, from these files.
TEMPLATES = {
    "sidecar": "injection-template.yaml",
    "gateway": "gateway-injection-template.yaml",
    "grpc-simple": "grpc-simple.yaml",
    "grpc-agent": "grpc-agent.yaml",
    "waypoint": "waypoint.yaml",
    "kube-gateway": "kube-gateway.yaml",
    "agentgateway": "agentgateway.yaml",
    "agentgateway-waypoint": "agentgateway-waypoint.yaml",
}


def merge(into, over):
    """Helper of mergeOverwrite: `over` laid onto `into`, maps merged key by key."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


def chart_values(chart, istiod):
    """The chart's .Values after templates/zzz_profile.yaml: its defaults, the overrides."""
    with open(os.path.join(chart, "values.yaml")) as f:
        defaults = yaml.safe_load(f)["_internal_defaults_do_not_set"]
    overrides = {"global": {"imagePullPolicy": "IfNotPresent", "caAddress": istiod}}
    return merge(defaults, overrides)


def injector_values(values):
    """The `values` key: pick global, sidecarInjectorWebhook and revision; pilot from cni and
    env; gateways from its securityContext and seccompProfile."""
    picked = {k: values[k] for k in ("global", "sidecarInjectorWebhook", "revision")}
    picked["pilot"] = {k: values[k] for k in ("cni", "env")}
    picked["gateways"] = {k: values["gateways"][k] for k in ("securityContext", "seccompProfile")}
    return picked


def injector_config(chart, values):
    """The `config` key, field by field as the template writes it."""
    webhook = values["sidecarInjectorWebhook"]
    templates = {}
    for name, file in TEMPLATES.items():
        if name not in webhook["templates"]:
            with open(os.path.join(chart, "files", file)) as f:
                templates[name] = f.read().strip() + "\n"
    templates.update(webhook["templates"])
    return {
        "defaultTemplates": webhook["defaultTemplates"] or ["sidecar"],
        "policy": values["global"]["proxy"]["autoInject"],
        "alwaysInjectSelector": webhook["alwaysInjectSelector"],
        "neverInjectSelector": webhook["neverInjectSelector"],
        "injectedAnnotations": webhook["injectedAnnotations"],
        # The chart's guard against an istiod older than its templates.
        "template": "{{ Template_Version_And_Istio_Version_Mismatched_Check_Installation }}",
        "templates": templates,
    }


def mesh_config(values, istiod):
    """The chart's mesh with .Values.meshConfig merged over it, and ours: istiod's address,
    CLOUD_PLATFORM. Without the
    chart's default metrics provider (defaultProviders.metrics: [prometheus]): for it istiod
    puts Istio's own istio.stats filter on every listener, which upstream Envoy lacks (its
    listeners are rejected and the proxy is never ready)."""
    mesh = {
        "trustDomain": "cluster.local",
        "rootNamespace": values["meshConfig"].get("rootNamespace") or values["global"]["istioNamespace"],
        "defaultConfig": {"discoveryAddress": istiod},
    }
    merge(mesh, values["meshConfig"])
    mesh["defaultConfig"]["proxyMetadata"] = {"CLOUD_PLATFORM": "none"}
    return mesh


def proxy_image(values):
    g = values["global"]
    variant = g["proxy"].get("variant") or g.get("variant") or ""
    return "%s/%s:%s%s" % (g["hub"], g["proxy"]["image"], g["tag"], "-" + variant if variant else "")


class Block(str):
    """A string YAML writes as a literal block, as the ConfigMap holds the templates."""


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: istio_config.py MODULE OUT ISTIOD_ADDRESS")
    module, out, istiod = sys.argv[1:]
    chart = os.path.join(module, CHART)
    values = chart_values(chart, istiod)
    config = injector_config(chart, values)
    config["templates"] = {k: Block(v) for k, v in config["templates"].items()}
    yaml.add_representer(Block, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|"))
    inject = os.path.join(out, "var/lib/istio/inject")
    os.makedirs(inject, exist_ok=True)
    with open(os.path.join(inject, "config"), "w") as f:
        yaml.dump(config, f, default_flow_style=False, sort_keys=False, width=1 << 16, allow_unicode=True)
    with open(os.path.join(inject, "values"), "w") as f:
        json.dump(injector_values(values), f, indent=2)
    with open(os.path.join(out, "mesh.yaml"), "w") as f:
        yaml.safe_dump(mesh_config(values, istiod), f, default_flow_style=False, sort_keys=False)
    print(proxy_image(values))


main()

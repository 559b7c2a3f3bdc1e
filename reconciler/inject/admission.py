"""The mutating admission webhook's decision: an AdmissionReview v1 request in, the same review with a response
out, whose JSONPatch adds what `sidecar.py` adds (Kubernetes: admission/v1 AdmissionReview; Istio:
pkg/kube/inject/webhook.go, `inject`).

The MutatingWebhookConfiguration (deploy/webhook.yaml) sends only pods of namespaces labelled
`istio-injection=enabled`; the pod's own opt-out is decided here. Every answer allows the pod: injection never
refuses one (when the webhook cannot be reached, the configuration's failurePolicy decides). The patch only
appends (containers, volumes, annotations the pod does not have), so it applies whatever other webhooks did before.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import MutableMapping
from typing import Any

from reconciler.inject import sidecar

log = logging.getLogger(__name__)

API_VERSION = "admission.k8s.io/v1"


class BadReview(ValueError):
    """A body that is not an AdmissionReview v1 request (answered 400)."""


def review(body: bytes, options: sidecar.Options) -> dict[str, Any]:
    """The AdmissionReview to answer `body` with."""
    request = _request(body)
    response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
    patch = _patch(request, options)
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch, separators=(",", ":")).encode()).decode()
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def _request(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as err:
        raise BadReview(f"not JSON: {err}") from None
    except RecursionError:  # nested past the interpreter's stack: no pod is shaped like that
        raise BadReview("not JSON this webhook reads: nested too deeply") from None
    if not isinstance(doc, dict) or doc.get("apiVersion") != API_VERSION or doc.get("kind") != "AdmissionReview":
        raise BadReview(f"expected an AdmissionReview of {API_VERSION}")
    request = doc.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("uid"), str) or not request["uid"]:
        raise BadReview("the AdmissionReview has no request with a uid")
    return request


def _patch(request: dict[str, Any], options: sidecar.Options) -> list[dict[str, Any]]:
    pod = request.get("object")
    if request.get("operation") != "CREATE" or not isinstance(pod, MutableMapping) or pod.get("kind") != "Pod":
        return []
    metadata = pod.get("metadata")
    metadata = metadata if isinstance(metadata, MutableMapping) else {}
    where = f"{request.get('namespace', '')}/{metadata.get('name') or metadata.get('generateName') or ''}"
    try:
        found = sidecar.pod_of(pod)
    except sidecar.NotAPodSpec as err:  # the API server refuses it anyway, after the webhooks
        log.info("inject webhook: %s left alone: %s", where, err)
        return []
    if found is None:
        return []
    decision = sidecar.decide(*found)
    log.info("inject webhook: pod %s: %s", where, decision)
    if decision is not sidecar.Decision.INJECTED:
        return []
    ops: list[dict[str, Any]] = [{"op": "add", "path": "/spec/containers/-", "value": c}
           for c in sidecar.containers(options, sidecar.workload_of(pod, found[0]))]
    volumes = sidecar.volumes(options)
    if isinstance(found[1].get("volumes"), list):
        ops += [{"op": "add", "path": "/spec/volumes/-", "value": v} for v in volumes]
    else:
        ops.append({"op": "add", "path": "/spec/volumes", "value": volumes})
    return ops + _annotations(found[0], sidecar.scrape_annotations(found[0]))


def _annotations(metadata: MutableMapping[str, Any], added: dict[str, str]) -> list[dict[str, Any]]:
    """Add `added` to the pod's annotations (JSON Pointer escapes `/` in a key as `~1`, RFC 6901)."""
    if not added:
        return []
    if not isinstance(metadata.get("annotations"), MutableMapping):
        return [{"op": "add", "path": "/metadata/annotations", "value": added}]
    return [{"op": "add", "path": "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1"), "value": value}
            for key, value in added.items()]

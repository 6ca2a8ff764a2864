"""The webhook receiver's Deployment (deploy/k8s/webhooks.yaml), without a cluster: one receiver at a time,
from the code location's image and settings, and its container's command, run in an empty folder with
exactly the pod's environment, storing a signed delivery once in the bucket's inbox."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

import yaml

from unified_assets_tests.support.dagster_dev import free_port
from unified_assets_tests.support.k8s import CONFIG_MAP, DEPLOYMENT, IMAGE, K8S, pod_environment

MANIFESTS = {item["kind"]: item for item in yaml.safe_load_all((K8S / "webhooks.yaml").read_text())}
POD = MANIFESTS["Deployment"]["spec"]["template"]
[CONTAINER] = POD["spec"]["containers"]
SIGNING_SECRET = "a-signing-secret-of-the-tests-own"
STARTUP_LIMIT_SECONDS = 60  # a safety net: the wait ends when the receiver says it listens
TICKET_EVENT = (
    b'{"type":"zen:event-type:ticket.created","id":"01J9","time":"2026-11-24T09:59:58Z",'
    b'"detail":{"id":"4821","priority":"URGENT","organization_id":"361"}}'
)


def test_one_receiver_at_a_time_from_the_code_locations_image_and_settings():
    spec = MANIFESTS["Deployment"]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    assert spec["selector"]["matchLabels"] == POD["metadata"]["labels"]
    assert CONTAINER["image"] == IMAGE
    assert CONTAINER["envFrom"] == [
        *({"configMapRef": {"name": source["name"]}} for source in DEPLOYMENT["envConfigMaps"]),
        *({"secretRef": {"name": source["name"]}} for source in DEPLOYMENT["envSecrets"]),
    ]
    environment = {variable["name"]: variable["value"] for variable in CONTAINER["env"]}
    [port] = CONTAINER["ports"]
    assert port["containerPort"] == int(environment["UNIFIED_ASSETS_WEBHOOK_PORT"])
    [mount] = CONTAINER["volumeMounts"]
    assert mount["mountPath"] == CONFIG_MAP["data"]["UNIFIED_ASSETS_DATA_DIR"]
    service = MANIFESTS["Service"]["spec"]
    assert service["selector"] == POD["metadata"]["labels"]
    assert [p["targetPort"] for p in service["ports"]] == [port["name"]]


def test_the_receivers_pod_stores_a_signed_delivery_once_in_the_buckets_inbox(tmp_path, s3_server):
    bucket = s3_server.create_bucket()
    config_maps = {
        CONFIG_MAP["metadata"]["name"]: {
            **CONFIG_MAP["data"],
            "UNIFIED_ASSETS_DATA_DIR": str(tmp_path / "scratch"),
            "UNIFIED_ASSETS_BUCKET_URL": f"s3://{bucket}/unified_assets",
            "UNIFIED_ASSETS_S3_ENDPOINT": s3_server.endpoint_url,
            "AWS_REGION": s3_server.region,
        }
    }
    secrets = {
        "unified-assets-secrets": {
            "AWS_ACCESS_KEY_ID": s3_server.access_key_id,
            "AWS_SECRET_ACCESS_KEY": s3_server.secret_access_key,
            "UNIFIED_ASSETS_SUPPORT_WEBHOOK_SECRET": SIGNING_SECRET,
        }
    }
    environment = pod_environment(CONTAINER, config_maps, secrets)
    port = free_port()  # the pod's own port, on this host's loopback
    environment |= {
        "UNIFIED_ASSETS_WEBHOOK_HOST": "127.0.0.1",
        "UNIFIED_ASSETS_WEBHOOK_PORT": str(port),
    }

    log = tmp_path / "receiver.log"
    receiver = start_the_container(environment, tmp_path, log)
    try:
        wait_until_listening(receiver, log)
        assert post_ticket_event(port, invocation="inv-1")["status"] == "stored"
        assert post_ticket_event(port, invocation="inv-1")["status"] == "duplicate"
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=30)
    assert receiver.returncode == 0, log.read_text()

    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix="unified_assets/inbox/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert len(keys) == 1 and keys[0].startswith("unified_assets/inbox/support/"), keys
    stored = s3_server.client().get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    assert stored == TICKET_EVENT
    assert SIGNING_SECRET not in log.read_text()
    assert not (tmp_path / "scratch" / "inbox").exists()


def start_the_container(environment: dict[str, str], tmp_path, log) -> subprocess.Popen:
    """The container's command in an empty working folder with an empty home, the image's programs (this
    virtualenv's) first on the PATH."""
    workdir, home = tmp_path / "pod-workdir", tmp_path / "pod-home"
    workdir.mkdir()
    home.mkdir()
    path = os.pathsep.join([str(os.path.dirname(sys.executable)), os.environ.get("PATH", "")])
    return subprocess.Popen(
        CONTAINER["command"],
        cwd=workdir,
        env={**environment, "PATH": path, "HOME": str(home)},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_until_listening(receiver: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while "receiving webhooks at" not in log.read_text():
        assert receiver.poll() is None, f"the receiver exited:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"the receiver never listened:\n{log.read_text()}"
        time.sleep(0.1)


def post_ticket_event(port: int, invocation: str) -> dict:
    """A delivery signed as Zendesk signs one: HMAC-SHA256 of the timestamp and the body."""
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(SIGNING_SECRET.encode(), timestamp.encode() + TICKET_EVENT, hashlib.sha256)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/support",
        data=TICKET_EVENT,
        headers={
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Signature": base64.b64encode(digest.digest()).decode(),
            "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
            "X-Zendesk-Webhook-Invocation-Id": invocation,
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)

"""Proof that tests/envtest.py runs a real kube-apiserver backed by etcd."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.envtest import ControlPlane, MissingTestbinError, find_testbin

GROUP = "envtest.jobqueue.test"
CRD_YAML = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.envtest.jobqueue.test
spec:
  group: envtest.jobqueue.test
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer, minimum: 1}
"""


@pytest.fixture(scope="module")
def api_client(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    # A client of its own: the kubernetes module's global default config is left alone.
    path = str(control_plane.kubeconfig_path)
    api = config.new_client_from_config(config_file=path)  # type: ignore[no-untyped-call]
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace(api_client: client.ApiClient) -> str:
    name = f"envtest-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    # No namespace controller runs, so deleting it would leave it Terminating: keep it.
    return name


def test_server_is_a_real_kube_apiserver(
    control_plane: ControlPlane, api_client: client.ApiClient
) -> None:
    version = client.VersionApi(api_client).get_code()
    assert version.major == "1"
    assert version.git_version.startswith("v1.")
    assert control_plane.server_url.startswith("https://127.0.0.1:")
    assert control_plane.startup_seconds > 0


def test_configmap_round_trip(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="settings", labels={"app": "jobqueue"}),
            data={"queue": "default", "concurrency": "4"},
        ),
    )
    got = core.read_namespaced_config_map("settings", namespace)
    assert got.data == {"queue": "default", "concurrency": "4"}
    assert got.metadata is not None
    assert got.metadata.labels == {"app": "jobqueue"}
    assert got.metadata.uid
    listed = core.list_namespaced_config_map(namespace).items
    names = [cm.metadata.name for cm in listed if cm.metadata is not None]
    assert "settings" in names


def test_lease_update_with_stale_resource_version_conflicts(
    api_client: client.ApiClient, namespace: str
) -> None:
    coord = client.CoordinationV1Api(api_client)
    created = coord.create_namespaced_lease(
        namespace,
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="leader"),
            spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15),
        ),
    )
    assert created.metadata is not None and created.spec is not None
    stale_rv = created.metadata.resource_version
    assert stale_rv

    created.spec.holder_identity = "b"
    updated = coord.replace_namespaced_lease("leader", namespace, created)
    assert updated.spec is not None and updated.metadata is not None
    assert updated.spec.holder_identity == "b"
    assert updated.metadata.resource_version != stale_rv

    stale = client.V1Lease(
        metadata=client.V1ObjectMeta(name="leader", resource_version=stale_rv),
        spec=client.V1LeaseSpec(holder_identity="c", lease_duration_seconds=15),
    )
    with pytest.raises(ApiException) as excinfo:
        coord.replace_namespaced_lease("leader", namespace, stale)
    assert excinfo.value.status == 409
    assert "the object has been modified" in str(excinfo.value.body)
    current = coord.read_namespaced_lease("leader", namespace)
    assert current.spec is not None
    assert current.spec.holder_identity == "b"


def test_apply_crds_waits_until_established(
    control_plane: ControlPlane, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    crd_file = tmp_path / "widget-crd.yaml"
    crd_file.write_text(CRD_YAML)
    applied = control_plane.apply_crds([crd_file])
    assert applied == [f"customresourcedefinition.apiextensions.k8s.io/widgets.{GROUP}"]

    custom = client.CustomObjectsApi(api_client)
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 3},
    }
    custom.create_namespaced_custom_object(GROUP, "v1", namespace, "widgets", body)
    got: Any = custom.get_namespaced_custom_object(GROUP, "v1", namespace, "widgets", "w1")
    assert got["spec"] == {"size": 3}

    # The CRD's OpenAPI schema is enforced by the server.
    bad = {**body, "metadata": {"name": "w2"}, "spec": {"size": 0}}
    with pytest.raises(ApiException) as excinfo:
        custom.create_namespaced_custom_object(GROUP, "v1", namespace, "widgets", bad)
    assert excinfo.value.status == 422


def test_missing_binaries_name_the_script(tmp_path: Path) -> None:
    with pytest.raises(MissingTestbinError, match=r"hack/testbin\.sh"):
        find_testbin(tmp_path)
    with pytest.raises(MissingTestbinError, match=r"hack/testbin\.sh"):
        ControlPlane(tmp_path).start()

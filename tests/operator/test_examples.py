"""The example Tenant and JobQueue in examples/ are valid for the real apiserver."""

from __future__ import annotations

from pathlib import Path

from tests.envtest import ControlPlane

ROOT = Path(__file__).resolve().parents[2]


def test_example_resources_pass_server_side_validation(control_plane: ControlPlane) -> None:
    control_plane.apply_crds([ROOT / "crds"])
    for name in ("tenant.yaml", "jobqueue.yaml"):
        out = control_plane.kubectl(
            "apply", "--dry-run=server", "-f", str(ROOT / "examples" / name)
        )
        assert "(server dry run)" in out.stdout, out.stdout + out.stderr

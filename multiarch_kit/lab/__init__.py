"""The build lab: its settings and folder, its registry, the stand-ins for Docker Hub's images, more engines
(extra dockerds, the arm64 VM), the workloads, the lab itself (up, status, down) and the doctor."""

from .choice import base_image
from .config import LabConfig
from .lifecycle import (
    PROVISION_SCRIPT, Lab, LabStatus, answer, buildx_facts, can_provision, check_platforms, down, exclusive,
    exports_type_docker, provision, read, status, up,
)

__all__ = ["PROVISION_SCRIPT", "Lab", "LabConfig", "LabStatus", "answer", "base_image", "buildx_facts",
           "can_provision", "check_platforms", "down", "exclusive", "exports_type_docker", "provision", "read",
           "status", "up"]

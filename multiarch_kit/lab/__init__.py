"""The build lab: its settings and folder, its registry, the stand-ins for Docker Hub's images, more engines
(extra dockerds, the arm64 VM), the workloads, the lab itself (up, status, down) and the doctor."""

from .config import LabConfig
from .lifecycle import (  # the face: what callers use as lab.NAME
    PROVISION_SCRIPT, Lab, LabStatus, can_provision, provision, exports_type_docker, buildx_facts,
    base_image, check_platforms, answer, exclusive, up, read, status, down,
)

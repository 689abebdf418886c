"""Containers for guide 6: a locally built dpdk-testpmd image and the engine that runs it."""

from framework.container.engine import ContainerEngine
from framework.container.image import ensure_probe_image, ensure_testpmd_image

__all__ = ["ContainerEngine", "ensure_probe_image", "ensure_testpmd_image"]

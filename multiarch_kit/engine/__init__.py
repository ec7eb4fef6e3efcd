"""The Docker engine: where it is and what it says about itself (an :class:`Engine`, read once), the Docker
context store, its binfmt emulators, and the images it loads, tags, pushes and runs."""

from ..core.commands import docker
from .daemon import (
    DEFAULT_SOCKET, IMAGE_STORE_FIX, Engine, EngineFacts, Kind, Where, answers, api_client, connect, engine_fix, facts,
    facts_from, is_debian, kind_of, locate, not_answering_error,
)

__all__ = ["DEFAULT_SOCKET", "IMAGE_STORE_FIX", "Engine", "EngineFacts", "Kind", "Where", "answers", "api_client",
           "connect", "docker", "engine_fix", "facts", "facts_from", "is_debian", "kind_of", "locate",
           "not_answering_error"]

"""The Docker engine: how to reach it, what it says about itself, its images and its emulators."""

from .daemon import (  # the face: what callers use as engine.NAME
    DEFAULT_SOCKET, IMAGE_STORE_FIX, docker, EngineFacts, Endpoint, context_host, context_name, endpoint,
    client, uses_default_socket, facts, facts_from, answers, not_answering_error, engine_fix, is_debian,
)

"""The other engines notebooks 08 to 10 use: the reader's (named in the environment), the lab's own, or none.

The last is Docker Desktop's case (one engine, no root): 08 and 09 then skip their classic-store parts and 10 builds
every platform on the one engine through the split code; the engine test below checks that build's index.
"""

import dataclasses
import json
import uuid
from types import SimpleNamespace

import pytest
from conftest import ROOT

from multiarch_kit.core.errors import KitError
from multiarch_kit.core.settings import Settings
from multiarch_kit.lab import extra_engines as engines
from multiarch_kit.lab.config import LabConfig
from multiarch_kit.oci import registry
from multiarch_kit.oci.platforms import AMD64, ARM64, ARMV7
from multiarch_kit.oci.references import parse_reference
from multiarch_kit.scale import machines, split
from multiarch_kit.scale.machines import Source

ARTICLE = ROOT / "notebooks" / "article"


def _env(**variables: str) -> Settings:
    """Settings made from an environment of the test's own."""
    return Settings.from_env({"MULTIARCH_KIT_LAB": "/tmp/kit-lab", **variables})


def _here(tmp_path, env: Settings | None = None, engine_name: str = "default", base=None):
    """A lab as far as the choice of engines reads it: its folder and settings, its engine's name."""
    settings = dataclasses.replace(env or _env(), lab_dir=tmp_path)
    return SimpleNamespace(config=LabConfig.of(settings), engine=SimpleNamespace(name=engine_name))


def _with(lab_status, **variables: str):
    """The real lab, its settings as if ``variables`` were in the environment."""
    settings = dataclasses.replace(lab_status.config.env, **variables)
    return dataclasses.replace(lab_status, config=dataclasses.replace(lab_status.config, settings=settings))


def _error(fn, *args) -> str:
    with pytest.raises(KitError) as err:
        fn(*args)
    text = str(err.value)
    assert "\n" not in text  # one line, as the CLI and the notebooks print it
    return text


@pytest.mark.parametrize(("named", "can_start", "source"), [
    (True, True, Source.READER),  # the reader's engines win, even where the lab could start its own
    (True, False, Source.READER),
    (False, True, Source.LAB),
    (False, False, Source.NONE),  # Docker Desktop, or Linux without root
])
def test_the_readers_engines_first_then_the_labs_then_none(named, can_start, source):
    assert machines.choose(named, can_start) is source


def test_the_classic_context_is_read_from_the_environment():
    assert machines.parse_classic(_env(MULTIARCH_KIT_CLASSIC_CONTEXT="old-engine")) == "old-engine"
    assert machines.parse_classic(_env(MULTIARCH_KIT_CLASSIC_CONTEXT=" ci.classic_1 ")) == "ci.classic_1"
    assert machines.parse_classic(_env()) is None
    assert machines.parse_classic(_env(MULTIARCH_KIT_CLASSIC_CONTEXT="  ")) is None
    for bad in ("two words", "a,b", "-dash", "x"):
        text = _error(machines.parse_classic, _env(MULTIARCH_KIT_CLASSIC_CONTEXT=bad))
        assert text.startswith(f"MULTIARCH_KIT_CLASSIC_CONTEXT: {bad!r} is not a Docker context name")


def test_nodes_are_read_from_the_environment_as_the_cli_reads_them():
    env = _env(MULTIARCH_KIT_NODES="linux/aarch64=m2, linux/amd64=intel")
    assert machines.parse_nodes(env, [AMD64, ARM64]) == {ARM64: "m2", AMD64: "intel"}
    assert machines.parse_nodes(_env(MULTIARCH_KIT_NODES="linux/arm64=m2"), [AMD64, ARM64]) == {ARM64: "m2"}
    assert machines.parse_nodes(_env(), [AMD64, ARM64]) is None
    assert machines.parse_nodes(_env(MULTIARCH_KIT_NODES=""), [AMD64, ARM64]) is None
    for value, message in [
        ("linux/arm64", "MULTIARCH_KIT_NODES 'linux/arm64' is not PLATFORM=CONTEXT"),
        ("linux/arm64=m2,", "MULTIARCH_KIT_NODES '' is not PLATFORM=CONTEXT"),
        ("linux/arm64=m2;linux/amd64=intel", "MULTIARCH_KIT_NODES: 'm2;linux/amd64=intel' is not a Docker context"),
        ("linux/arm64=m2,linux/arm64/v8=m3", "MULTIARCH_KIT_NODES names linux/arm64 twice"),
        ("linux/arm/v7=pi", "MULTIARCH_KIT_NODES 'linux/arm/v7=pi': linux/arm/v7 is not among the platforms"),
        ("linux/arm64/v8/x=old", "MULTIARCH_KIT_NODES 'linux/arm64/v8/x=old': invalid platform"),
    ]:
        assert _error(machines.parse_nodes, _env(MULTIARCH_KIT_NODES=value), [AMD64, ARM64]).startswith(message)


def test_the_cli_still_names_its_flag():
    assert _error(split.parse_nodes, ["linux/arm64"], [AMD64, ARM64]).startswith(
        "--node 'linux/arm64' is not PLATFORM=CONTEXT")


def test_without_a_second_engine_every_platform_goes_to_the_current_context(monkeypatch, tmp_path):
    monkeypatch.setattr(engines, "can_start", lambda: (False, "more engines need root (sudo)"))
    nodes = machines.split_nodes(_here(tmp_path, engine_name="desktop-linux"), [AMD64, ARM64, ARMV7])
    assert nodes.source is Source.NONE
    assert nodes.contexts == {AMD64: "desktop-linux", ARM64: "desktop-linux", ARMV7: "desktop-linux"}
    # DOCKER_HOST's engine, or the default context's: the name the CLI gives it
    assert machines.split_nodes(_here(tmp_path), [AMD64]).context(AMD64) == "default"
    assert machines.classic_engine(_here(tmp_path)) is None


def test_a_missing_or_containerd_classic_context_is_one_line(lab_status):
    missing = f"no-such-{uuid.uuid4().hex[:8]}"
    text = _error(machines.classic_engine, _with(lab_status, classic_context=missing))
    assert text.startswith(f"MULTIARCH_KIT_CLASSIC_CONTEXT={missing}: there is no such Docker context here")
    # The lab's own engine keeps images in the containerd store: not what the lesson needs.
    assert lab_status.engine.containerd_store
    text = _error(machines.classic_engine, _with(lab_status, classic_context=lab_status.engine.name))
    assert "keeps images in the containerd store, not the classic one" in text


def test_nodes_naming_a_missing_context_are_one_line(lab_status):
    missing = f"no-such-{uuid.uuid4().hex[:8]}"
    text = _error(machines.split_nodes, _with(lab_status, nodes=f"linux/arm64={missing}"), [AMD64, ARM64])
    assert text.startswith(f"MULTIARCH_KIT_NODES: {missing} (for linux/arm64) is not a Docker context here")


def test_every_platform_on_the_one_engine_through_the_split_code(lab_status, monkeypatch):
    monkeypatch.setattr(engines, "can_start", lambda: (False, "more engines need root (sudo)"))
    platforms = [AMD64, ARM64, ARMV7]
    nodes = machines.split_nodes(_with(lab_status, nodes=""), platforms)
    assert nodes.source is Source.NONE and set(nodes.contexts) == set(platforms)
    tag = f"{lab_status.config.registry_host}/kit-split/one-engine:{uuid.uuid4().hex[:8]}"
    result = split.build(ARTICLE, tag, platforms, nodes.contexts, here=lab_status, base=lab_status.base, echo=False)
    # Read back from the registry, not from the result: the index under the tag, its image entries' platforms.
    ref = parse_reference(tag)
    fetched = registry.Registry(ref.host, ref.repository).get_manifest(ref.tag)
    index = json.loads(fetched.raw)
    pushed = {(m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant"))
              for m in index["manifests"] if m.get("annotations", {}).get("vnd.docker.reference.type") is None}
    assert pushed == {("linux", "amd64", None), ("linux", "arm64", None), ("linux", "arm", "v7")}
    assert fetched.digest == result.index
    # Each platform went through the split path (pushed under a tag of its own, then merged), on one engine.
    assert len(result.commands) == len(platforms) + 1 and "imagetools create" in result.commands[-1]
    assert {b.node for b in result.builds} == {lab_status.engine.name}
    assert {b.platform: b.emulator for b in result.builds} == {p: lab_status.emulator_for(p) for p in platforms}


def test_the_lab_second_engine_is_stopped_by_the_lesson_that_started_it(monkeypatch, tmp_path):
    started, stopped = [], []
    monkeypatch.setattr(engines, "can_start", lambda: (True, ""))
    monkeypatch.setattr(engines, "start", lambda n, echo=True: started.append(n) or True)
    monkeypatch.setattr(engines, "stop", lambda n, echo=True: stopped.append(n) or True)
    nodes = machines.split_nodes(_here(tmp_path), [AMD64, ARM64], echo=False)
    assert nodes.source is Source.LAB and nodes.contexts == {ARM64: "multiarch-kit-node2"}
    assert nodes.stop(echo=False) is True and stopped == started == [engines.node(tmp_path, 2)]
    reader = machines.Nodes({ARM64: "m2"}, Source.READER)
    assert reader.stop(echo=False) is False and len(stopped) == 1  # the reader's engines are left alone

"""BuildKit in a container: the image a ``docker-container`` builder runs, and the lab's builder of that driver.

The engine's own builder (the ``docker`` driver) is BuildKit inside dockerd. It cannot push a reproducible
index (``rewrite-timestamp`` conflicts with the engine's unpacking), cannot export a cache to a registry, and
on the classic image store cannot build several platforms at once. A ``docker-container`` builder runs BuildKit
in a container of its own, from Docker Hub's ``moby/buildkit:buildx-stable-1``, and has none of those walls.

Docker Hub is out of reach in this lab, and Debian ships no ``buildkitd`` package; its ``docker.io`` source
package carries BuildKit as its ``orig-buildkit`` component. So the lab makes a labelled STAND-IN: ``mmdebstrap``
makes a Debian trixie root with docker.io's Build-Depends, and a hook (``data/build-buildkit.sh``) builds
``buildkitd`` and ``buildctl`` there from that source with Debian's patches, static, for each platform the image
holds. The image is Debian's ``runc`` (unpacked by ``mmdebstrap --variant=extract``: no emulator needed) and
those two binaries, entrypoint ``buildkitd``, as the real one. Made once per machine, kept while its recipe
holds; a machine that reaches Docker Hub uses the real image.

The builder (:func:`ensure_builder`) is what a reader creates by hand, printed as it runs: ``docker buildx create
--driver docker-container --driver-opt network=host --buildkitd-config FILE``. Host networking lets BuildKit
reach a registry on the host's ``localhost``; the config marks the lab registry as plain HTTP, and carries the
engine's registry mirrors, which a builder in a container does not inherit from the engine.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..buildx import SOURCE_DATE_EPOCH, builders
from ..core import commands, files
from ..core.errors import CommandError, KitError
from ..engine import Engine
from ..oci.platforms import Platform
from . import buildbase
from .config import LabConfig
from .standins import STAND_IN, Base, StandIn, recipe_digest

SUITE = "trixie"  # its docker.io source downloads from the mirror; sid's buildkit component answered 404 here
PLATFORMS = (Platform.parse("linux/amd64"), Platform.parse("linux/arm64"))  # a node on the arm64 VM pulls arm64
TOOLCHAIN = ("golang-go", "patch", "xz-utils", "ca-certificates")
RUNTIME = ("runc",)  # what buildkitd's OCI worker runs each step with
BUILD_SCRIPT = Path(str(resources.files("multiarch_kit") / "data" / "build-buildkit.sh"))  # package data
NAME = "moby/buildkit:buildx-stable-1"
BUILDER = "multiarch-kit-container"
DESCRIPTION = ("STAND-IN for moby/buildkit:buildx-stable-1 made by multiarch-kit: buildkitd and buildctl built from "
               "Debian trixie's docker.io source (its BuildKit component, Debian's patches), and Debian's runc: "
               "not Docker's image")
_DOCKERFILE = (
    "# The STAND-IN for moby/buildkit:buildx-stable-1, made by multiarch-kit (see multiarch_kit/lab/buildkit.py):\n"
    "# Debian's runc, and buildkitd and buildctl built from Debian's docker.io source.\n"
    "FROM scratch\nARG TARGETARCH\nARG TARGETVARIANT\n"
    "ADD rootfs-${TARGETARCH}${TARGETVARIANT}.tar /\n"
    "COPY buildkit-${TARGETARCH}${TARGETVARIANT}/ /usr/bin/\n"
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    "VOLUME /var/lib/buildkit\n"
    'ENTRYPOINT ["buildkitd"]\n')

STANDIN = StandIn(
    stands_for=(NAME,), repository="multiarch-kit/buildkit-standin", tag="buildx-stable-1", folder="buildkit",
    description=DESCRIPTION, dockerfile=_DOCKERFILE, title="BuildKit image",
    standin_note=("BuildKit image: moby/buildkit:buildx-stable-1 is a STAND-IN ({ref}, BuildKit built here from "
                  "Debian's docker.io source) because Docker Hub is not reachable."),
    what="the BuildKit image")


def recipe() -> str:
    """A digest of everything the image is made from; the lab makes it again when this changes."""
    return recipe_digest([SUITE, DESCRIPTION, _DOCKERFILE, SOURCE_DATE_EPOCH, *TOOLCHAIN, *RUNTIME,
                          *map(str, PLATFORMS)], [BUILD_SCRIPT.read_bytes()])


def binaries_argv(mirror: str, out: Path) -> commands.Command:
    """The ``mmdebstrap`` line that builds buildkitd and buildctl for :data:`PLATFORMS` into ``out/<arch>/``.

    The root is thrown away (``/dev/null``): only the binaries leave it, through the ``sync-out`` hook."""
    inside = "/out"
    return (commands.Command("mmdebstrap", "--variant=apt", "--format=null")
            .option("--include", ",".join(TOOLCHAIN))
            .option("--aptopt", 'Acquire::Retries "3"')
            .option("--customize-hook", 'chroot "$1" apt-get build-dep --yes docker.io')
            .option("--customize-hook", f"upload {BUILD_SCRIPT} /build-buildkit.sh")
            .option("--customize-hook", f'chroot "$1" sh /build-buildkit.sh {inside} '
                    + " ".join(p.architecture for p in PLATFORMS))
            .option("--customize-hook", f"sync-out {inside} {out}")
            .add(SUITE, "/dev/null", f"deb {mirror} {SUITE} main", f"deb-src {mirror} {SUITE} main"))


def runtime_argv(platform: Platform, mirror: str, out: Path) -> commands.Command:
    """The ``mmdebstrap`` line for one platform's root filesystem: runc and what it needs, unpacked only (no
    package script runs, so no emulator is needed), with ``/bin`` and ``/lib`` linked into ``/usr``."""
    return (commands.Command("mmdebstrap", "--variant=extract", "--format=tar")
            .option("--architectures", platform.arch.debian)
            .option("--include", ",".join(RUNTIME))
            .option("--hook-dir", "/usr/share/mmdebstrap/hooks/merged-usr")
            .option("--dpkgopt", list(buildbase.DPKG_OPTIONS))
            .option("--aptopt", 'Acquire::Retries "3"')
            .add(SUITE, out, mirror))


def ensure(cfg: LabConfig, *, echo: bool = True) -> Base:
    """The stand-in in the lab registry, made and pushed first if it is missing or its recipe changed.

    About five minutes once on two cores (most of it apt and Go); the binaries and root filesystems are kept in
    the lab folder, so a failed push does not build them again."""
    digest = recipe()
    found = STANDIN.current(cfg, digest)
    if found:
        return found
    folder = cfg.paths.standin(STANDIN.folder) / "made" / digest[:16]
    folder.mkdir(parents=True, exist_ok=True)
    mirror = buildbase.apt_mirror()
    started = time.monotonic()
    log = cfg.paths.logs / "buildkit-standin.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if not all((folder / "bin" / p.architecture / "buildkitd").exists() for p in PLATFORMS):
        print(f"Making the BuildKit image (once per machine, about five minutes): BuildKit from Debian {SUITE}'s "
              f"docker.io source, for {', '.join(map(str, PLATFORMS))}; full log in {log}", flush=True)
        _build_binaries(mirror, folder / "bin", log, started, echo=echo)
    check_binaries(folder / "bin")
    tars = {p: folder / f"rootfs-{p.tag_suffix}.tar" for p in PLATFORMS}
    for p, tar in tars.items():
        if not tar.exists():
            commands.run(runtime_argv(p, mirror, tar.with_suffix(".part")), echo=echo, timeout=900,
                         env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH})
            tar.with_suffix(".part").rename(tar)

    def fill(context: Path) -> None:  # hard links: the context costs no disk of its own
        for p, tar in tars.items():
            (context / tar.name).hardlink_to(tar)
            shutil.copytree(folder / "bin" / p.architecture, context / f"buildkit-{p.tag_suffix}",
                            copy_function=_link)

    made = STANDIN.make(cfg, digest, PLATFORMS, fill, echo=echo)
    print(f"Made the BuildKit image in {time.monotonic() - started:.0f} s: {made.pinned}", flush=True)
    return made


def check_binaries(folder: Path) -> None:
    """Each platform's buildkitd and buildctl are ELF files for that platform (read from their headers): a build
    that ignored GOARCH would otherwise put amd64 binaries in the arm64 image, and only the VM's node would tell."""
    from ..verify import elf  # here, not at the top: verify loads pandas, which lab up does not need

    for p in PLATFORMS:
        for name in ("buildkitd", "buildctl"):
            path = folder / p.architecture / name
            with open(path, "rb") as f:
                info = elf.read_elf(f)
            wrong = "not an ELF file" if info is None else elf.judge(info, p)
            if wrong:
                raise KitError(f"{path}: {wrong}", f"remove {folder} and make the BuildKit image again")


def _link(src: str, dst: str) -> None:
    Path(dst).hardlink_to(src)


def _build_binaries(mirror: str, out: Path, log: Path, started: float, *, echo: bool) -> None:
    """Run :func:`binaries_argv`, its ``mk:`` and mmdebstrap's own ``I:``/``E:`` lines shown, all lines logged."""
    part = out.with_name(out.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)  # sync-out copies into a folder that exists
    with open(log, "w") as written:
        def progress(line: str) -> None:
            written.write(line + "\n")
            if line.startswith(("mk: ", "E: ", "I: running --customize-hook")):
                print(f"  [{time.monotonic() - started:5.0f} s] {line}", flush=True)
        try:
            commands.run(binaries_argv(mirror, part), echo=echo, timeout=3600, on_line=progress,
                         env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH})
        except CommandError as exc:
            shutil.rmtree(part, ignore_errors=True)
            raise KitError(f"building BuildKit from Debian's docker.io source failed ({exc.message.splitlines()[0]})",
                           f"read {log}; a mirror mid-sync fails for a while, so run the same command again") from None
    shutil.rmtree(out, ignore_errors=True)
    part.rename(out)


@dataclass(frozen=True)
class ContainerBuilder:
    """The lab's ``docker-container`` builder: its name, the image its node runs and what it can build."""

    name: str
    image: str  # "moby/buildkit:buildx-stable-1", or the lab's stand-in by digest
    builder: builders.Builder
    created: bool = False  # made (or made again) by this call

    @property
    def buildkit(self) -> str:
        return self.builder.nodes[0].buildkit if self.builder.nodes else ""


def buildkitd_config(registry_host: str, mirrors: tuple[str, ...] = ()) -> str:
    """The ``buildkitd.toml`` the builder gets: the lab registry is plain HTTP; Docker Hub's pulls go through the
    engine's own mirrors (``registry-mirrors``; plain HTTP ones marked so), as the engine's builder's do."""
    lines = [f'[registry."{registry_host}"]', "  http = true"]
    hosts = []
    for mirror in mirrors:
        scheme, _, rest = mirror.partition("://")
        host = (rest or scheme).strip("/")
        hosts.append(host)
        if scheme == "http":
            lines += [f'[registry."{host}"]', "  http = true"]
    if hosts:
        lines += ['[registry."docker.io"]', "  mirrors = [" + ", ".join(f'"{h}"' for h in hosts) + "]"]
    return "\n".join(lines) + "\n"


def create_argv(name: str, config: Path, image: str | None, where: Engine) -> commands.Command:
    """``docker buildx create`` for a ``docker-container`` builder on ``where``'s engine, as a reader types it
    (``image`` None: the driver's default, Docker Hub's moby/buildkit)."""
    return (where.docker("buildx", "create")
            .flag("--name", name)
            .flag("--driver", "docker-container")
            .flag("--driver-opt", [f"image={image}"] if image else [])
            .flag("--driver-opt", "network=host")
            .flag("--buildkitd-config", config)
            .flag("--bootstrap"))


def builder_name(where: Engine) -> str:
    """The lab's builder for ``where``'s engine: :data:`BUILDER` for the engine the environment names, with the
    context's name after it for another (buildx keeps builders by name, whichever engine they run on)."""
    return f"{BUILDER}-{where.context}" if where.named and where.context else BUILDER


def ensure_builder(cfg: LabConfig, where: Engine, image: Base, *, echo: bool = True) -> ContainerBuilder:
    """The lab's ``docker-container`` builder on ``where``'s engine (:func:`builder_name`): created if it is
    missing or was made with another image or config, started if it is stopped. ``image`` is :func:`ensure`'s
    stand-in or Docker Hub's."""
    name = builder_name(where)
    wanted_image = image.pinned if image.source == STAND_IN else None
    wanted = {"image": wanted_image, "config": buildkitd_config(cfg.registry_host, where.hub_mirrors),
              "engine": where.engine_id}
    found = find(where, name)
    created = remake(cfg, name, found, wanted, [create_argv(name, config_path(cfg, name), wanted_image, where)],
                     where.docker("buildx", "rm", name), echo=echo)
    if not created and not all(n.status == "running" for n in found.nodes):
        commands.run(where.docker("buildx", "inspect", "--bootstrap", name), echo=echo, timeout=600)
    found = find(where, name)
    if found is None:
        raise KitError(f"the builder {name} was created but 'docker buildx inspect {name}' does not find it",
                       f"run 'docker buildx rm {name}', then 'multiarch-kit lab up --container-builder'")
    return ContainerBuilder(name, wanted_image or NAME, found, created)


def plain_http_builder(cfg: LabConfig) -> str | None:
    """The lab's builder when its ``buildkitd.toml`` marks the lab registry plain HTTP, for ``docker buildx
    imagetools``: buildx reads a registry's HTTP setting from a builder's config, never from the engine's
    insecure-registries, so without one it speaks HTTPS to a lab registry named other than localhost (``server gave
    HTTP response to HTTPS client``). None when it was not made for this registry (``lab up --container-builder``)."""
    record = files.read_json(_folder(cfg, BUILDER) / "builder.json") or {}
    marks = "\n".join(buildkitd_config(cfg.registry_host).split("\n")[:2])  # [registry."HOST:PORT"], http = true
    made = marks in str(record.get("config", ""))
    return BUILDER if made and find(None, BUILDER) is not None else None


def find(where: Engine | None, name: str | None = None) -> builders.Builder | None:
    """The lab's builder on ``where``'s engine as ``docker buildx inspect`` reads it (None: not made); with no
    ``where``, the builder ``name`` whichever engine it runs on."""
    context = where.context if where is not None and where.named else None
    try:
        return builders.inspect(name or builder_name(where), context=context)
    except (CommandError, KitError):  # no such builder
        return None


# --- what every builder the lab makes shares: its folder, the record of how it was made, its removal -------------

def _folder(cfg: LabConfig, name: str) -> Path:
    return cfg.paths.standin(STANDIN.folder) / "builders" / name


def config_path(cfg: LabConfig, name: str) -> Path:
    """Where the builder ``name``'s ``buildkitd.toml`` is written (``docker buildx create --buildkitd-config``)."""
    return _folder(cfg, name) / "buildkitd.toml"


def remake(cfg: LabConfig, name: str, found: builders.Builder | None, wanted: dict,
           create: list[commands.Command], rm: commands.Command, *, echo: bool = True) -> bool:
    """Create the builder ``name`` with the ``create`` commands unless ``found`` was made as ``wanted`` says (its
    image, its config's text, its nodes...), removing it first with ``rm`` when it was made otherwise. The record
    of how it was made is kept beside its config. Returns whether it was (re)created."""
    record = _folder(cfg, name) / "builder.json"
    if found is not None and files.read_json(record) == wanted:
        return False
    if found is not None:  # made with another image, config or nodes: made again, as a reader would
        commands.run(rm, echo=echo, timeout=300)
    config_path(cfg, name).parent.mkdir(parents=True, exist_ok=True)
    config_path(cfg, name).write_text(wanted["config"])
    for argv in create:
        commands.run(argv, echo=echo, timeout=600)
    files.write_json(record, wanted)
    return True


def forget(cfg: LabConfig, name: str, rm: commands.Command, *, echo: bool = True) -> None:
    """Remove the builder ``name`` (``rm``) and its record: a builder whose engine is gone stays in
    ``docker buildx ls`` as an error, so the lab removes its builders before it stops their engines."""
    commands.run(rm, echo=echo, timeout=300)
    (_folder(cfg, name) / "builder.json").unlink(missing_ok=True)


def remove_builder(cfg: LabConfig, where: Engine, *, echo: bool = True) -> bool:
    """Remove the lab's builder on ``where``'s engine, before that engine stops. Returns whether there was one."""
    name = builder_name(where)
    if find(where, name) is None:
        return False
    forget(cfg, name, where.docker("buildx", "rm", name), echo=echo)
    return True

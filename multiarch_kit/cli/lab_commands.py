"""The lab's commands: ``doctor``, ``lab up|status|down`` and ``notebooks``."""

from __future__ import annotations

import json
from pathlib import Path

from .tables import print_frame


def run_doctor(args) -> int:
    from ..lab import config, doctor

    rows = doctor.run_checks(config.LabConfig.from_env())
    table = doctor.table(rows)
    if args.format == "json":
        print(json.dumps(table.to_dict(orient="records"), indent=2))
    else:
        print_frame(table)
    return 1 if any(r.status == doctor.FAIL for r in rows) else 0


def run_lab(args) -> int:
    from .. import lab
    from ..lab import armvm, buildkit, multinode

    if args.action == "up":
        st = lab.up(check=args.check, nodes=args.nodes, build_base_now=args.build_base, arm64_vm=args.arm64_vm,
                    container_builder=args.container_builder, multi_node=args.multi_node)
        print(st.base.note)
        print(f"engine: {st.engine.platform} ({st.engine.operating_system}), image store {st.engine.image_store}")
        print(f"registry: {st.registry.host} ({st.registry.kind})")
        print(f"base: {st.base.source} {st.base.ref}")
        for n in st.nodes:
            print(f"engine {n.name}: docker --context {n.name} (stands in for another machine)")
        if args.container_builder:
            print(f"builder {buildkit.BUILDER}: docker buildx build --builder {buildkit.BUILDER} (BuildKit in a "
                  "container: reproducible pushes, registry caches, several platforms on any image store)")
        if st.arm64_vm:
            print(f"engine {armvm.CONTEXT}: docker --context {armvm.CONTEXT} (a Debian arm64 VM, full-system "
                  f"emulated: {st.arm64_vm.levers.describe()}); DOCKER_CONTEXT={armvm.CONTEXT} makes it the lab's")
        if args.multi_node:
            print(f"builder {multinode.NAME}: docker buildx build --builder {multinode.NAME} --platform "
                  "linux/amd64,linux/arm64 --push ... (each platform on its own node, natively)")
        print_frame(st.table())
        if "proved each platform runs" not in " ".join(st.actions):
            print(f"(proven at {st.proven_at}; nothing has changed since: 'lab up --check' runs them again)")
        print(st.changed)
        return 0 if all(r.ok for r in st.runs) else 1
    if args.action == "status":
        st = lab.status()
        print(f"engine: {st.engine.platform} ({st.engine.operating_system}), image store {st.engine.image_store}")
        print(f"buildx: {st.buildx_version}, builder {st.builder.name} ({st.builder.driver})")
        print(f"registry: {st.registry.address} " + (f"({st.registry.kind})" if st.registry.answers else "not answering"))
        print(f"base: {st.base.source} {st.base.ref}" + (f" @ {st.base.digest}" if st.base.digest else ""))
        real = st.build_base_status()
        print("build base: " + (f"{real.source} {real.pinned}" if real else
                                "not made yet (made when a real workload first needs it, or 'lab up --build-base')"))
        for n in st.nodes:
            print(f"engine {n.name}: docker --context {n.name}")
        vm = armvm.vm(st.config.lab_dir)
        if vm.disk.exists():
            print(f"arm64 VM: {'running' if vm.running else 'stopped'} (docker --context {armvm.CONTEXT}; "
                  "'lab up --arm64-vm' boots it)")
        return 0
    stopped = lab.down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing (the lab had started nothing)"))
    return 0


def run_notebooks(args) -> int:
    from . import notebooks

    summary = notebooks.execute_all(Path(args.src), Path(args.out))
    events = notebooks.summary(Path(args.out))
    if len(events):
        print("\nwhat the notebooks built and pushed:")
        print_frame(events)
    print()
    print_frame(summary)
    print(f"executed notebooks and HTML copies are in {args.out}/")
    return 1 if (summary.status != "ok").any() else 0

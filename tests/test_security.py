"""Security: no shell, arguments stay arguments, no secrets in outputs, the provisioning script's limits."""

import ast
import io
import os
import re
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, kit_cli, require

from multiarch_kit import buildx, lab
from multiarch_kit.core.errors import CommandError
from multiarch_kit.engine import images
from multiarch_kit.oci import manifests
from multiarch_kit.oci.platforms import AMD64
from multiarch_kit.oci.references import open_source

PACKAGE = ROOT / "multiarch_kit"


def test_no_shell_anywhere_in_the_package():
    """Every command is an argument vector: no shell=True, os.system or os.popen."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "shell" and getattr(node.value, "value", False) is True:
                offenders.append(f"{path.name}:{node.lineno} shell=True")
            if isinstance(node, ast.Attribute) and node.attr in ("system", "popen") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                offenders.append(f"{path.name}:{node.lineno} os.{node.attr}")
    assert offenders == []


def test_a_build_arg_with_shell_syntax_reaches_the_build_as_one_argument(lab_status, tmp_path):
    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex[:8]}")
    hostile = f"; touch {marker}"
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM alpine:3.18\nARG NOTE\nRUN printf '%s' \"$NOTE\" > /note\n")
    result = buildx.build(context, platforms=[AMD64], build_args={"NOTE": hostile},
                          output=f"type=oci,dest={tmp_path / 'n.tar'}", base=lab_status.base, echo=False)
    assert f"NOTE={hostile}" in result.argv  # one element of the vector
    assert not marker.exists()
    source = open_source(f"oci-archive:{tmp_path / 'n.tar'}")
    image = manifests.follow(source, "n").images()[0]
    with tarfile.open(fileobj=io.BytesIO(source.blob(image.manifest.layers[-1].digest))) as t:
        assert t.extractfile("note").read().decode() == hostile  # the build saw the literal text


def test_an_image_name_with_shell_syntax_is_refused_not_run(lab_status):
    marker = Path(f"/tmp/pwned-{uuid.uuid4().hex[:8]}")
    with pytest.raises(CommandError):
        images.tag(lab_status.base.pinned, f"localhost:5000/x; touch {marker}")
    proc = kit_cli("inspect", f"x; touch {marker}")
    assert proc.returncode == 2 and "invalid reference" in proc.stderr
    assert not marker.exists()


SECRET = re.compile(r"(eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}|Bearer [A-Za-z0-9._-]{8,}|[Aa]uthorization:|"
                    r"password[\"']?\s*[:=]|[?&]token=[0-9a-f]{8,})")


def test_no_token_or_credential_in_notebooks_or_results():
    files = list((ROOT / "notebooks").glob("*.ipynb")) + [p for p in (ROOT / "results").rglob("*") if p.is_file()
                                                          and p.suffix in (".csv", ".json", ".svg", ".ipynb", ".html")]
    assert files
    leaks = [(p.name, m.group(0)[:20]) for p in files for m in SECRET.finditer(p.read_text(errors="replace"))]
    assert leaks == []


def test_a_refusal_does_not_echo_request_headers(private_registry):
    """A registry that wants credentials answers 401 with a challenge: the kit's line names the refusal only."""
    proc = kit_cli("inspect", f"{private_registry}/private/image:latest")
    assert proc.returncode == 2 and "refused manifest latest without credentials (401)" in proc.stderr
    assert not SECRET.search(proc.stdout + proc.stderr) and "realm" not in proc.stderr


def _fake_os_release(tmp_path: Path, text: str) -> list[str]:
    fake = tmp_path / "os-release"
    fake.write_text(text)
    return ["unshare", "-m", "sh", "-c", f'mount --bind "{fake}" /etc/os-release && exec bash "$0"',
            str(lab.PROVISION_SCRIPT)]


def test_provision_script_refuses_other_systems(tmp_path):
    require(os.geteuid() == 0 and bool(subprocess.run(["which", "unshare"], capture_output=True).stdout),
            "needs root and unshare (Linux)")
    for text, expected in [('ID=ubuntu\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu 24.04"\n', "Debian 12 or 13 only"),
                           ('ID=debian\nVERSION_ID="11"\n', "Debian 11 is not supported")]:
        proc = subprocess.run(_fake_os_release(tmp_path, text), capture_output=True, text=True)
        assert proc.returncode == 1 and expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _snapshot() -> dict[str, tuple]:
    out = {}
    for top in ("/etc", "/usr/local", "/var/lib/dpkg/arch"):
        for dirpath, _, names in os.walk(top):
            for n in names:
                p = os.path.join(dirpath, n)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                out[p] = (st.st_size, st.st_mtime_ns)
    return out


ALLOWED = {"/etc/docker/daemon.json", "/etc/apt/sources.list.d/multiarch-kit-trixie.sources",
           "/etc/apt/preferences.d/multiarch-kit-trixie", "/var/lib/dpkg/arch"}


def test_provision_script_changes_only_the_files_it_lists(lab_status, lab_config):
    require(os.geteuid() == 0 and lab_config.lab_dir.exists(), "needs root on a provisioned Debian lab")
    before = _snapshot()
    proc = subprocess.run(["bash", str(lab.PROVISION_SCRIPT)], capture_output=True, text=True,
                          env={**os.environ, "MULTIARCH_KIT_LAB": str(lab_config.lab_dir)})
    assert proc.returncode == 0, proc.stderr
    after = _snapshot()
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert changed <= ALLOWED, changed - ALLOWED
    listed = (lab.PROVISION_SCRIPT).read_text()
    assert all(p.split("/")[-1] in listed for p in ALLOWED)

"""Build the self-contained agent layer: a Lambda layer that runs in any runtime.

    python deploy/lambda/build_layer.py [--output DIR] [--cache-dir DIR] [--arch x86_64]

Theory of operation. The layer carries the agent frozen by PyInstaller: the interpreter,
the standard library, the agent and its dependencies, so the function's runtime needs no
Python (the seed's functions are PHP on Bref). A frozen program runs only where the glibc is
at least as new as the one it was built against, so it is built inside a Debian bullseye
root (glibc 2.31; Amazon Linux 2023 has 2.34) made with ``debootstrap``, with a CPython 3.11
compiled there from Debian's source package, as manylinux builds do with their old roots.
Everything comes from the two registries this project reaches: Debian (the root, the
compiler, the Python source) and PyPI (PyInstaller and the agent's dependencies, downloaded
on the host and installed in the root without network).

Three things are slow and cached under ``--cache-dir`` (default ``~/.cache/secretsd``),
each keyed by what it is made from, so a repeated build costs a hash of the sources:

- ``roots/bullseye-minbase-ARCH``: the bare root (about 2 minutes); the tests also run the
  layer in a copy of it, where there is no Python at all;
- ``roots/toolchain-KEY``: that root plus a compiler and the built CPython (about 8 minutes);
- ``layers/secretsd-agent-layer-ARCH-KEY.zip``: the layer for one state of the sources.

Roots are made in a ``.partial`` directory and renamed when complete, so an interrupted
build never leaves a root that looks finished. ``/proc`` is mounted in a root only while a
command runs there, and no root is copied or removed while anything is mounted inside it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STANDALONE = HERE / "standalone"
DEFAULT_CACHE = Path(os.environ.get("SECRETSD_CACHE_DIR", "~/.cache/secretsd")).expanduser()

SUITE = "bullseye"
MIRROR = "http://deb.debian.org/debian"
# Debian's newest CPython 3.11 source; bullseye itself has only 3.9, older than secretsd needs.
PYTHON_SOURCE_SUITE = "bookworm"
PYTHON_SOURCE_PACKAGE = "python3.11"
PYTHON_PREFIX = "/opt/python"
BUILD_PACKAGES = (
    "build-essential", "ca-certificates", "libssl-dev", "zlib1g-dev", "libffi-dev",
    "libbz2-dev", "liblzma-dev", "dpkg-dev",
)  # fmt: skip
FREEZER = ("pyinstaller>=6.3,<7",)
ARCHES = {"x86_64": ("amd64", "manylinux2014_x86_64")}
# The agent calls Secrets Manager and SSM Parameter Store; STS and SSO serve the credential
# providers. botocore's models for the other 400 services are most of its size.
BOTOCORE_SERVICES = ("secretsmanager", "ssm", "sts", "sso", "sso-oidc")
# The layer's layout: Lambda unpacks it into /opt and starts what is in /opt/extensions.
EXTENSION = "extensions/secretsd-agent"
PROGRAM_DIR = "secretsd-agent"
# Bumped when a step below changes in a way the hashed inputs do not show.
RECIPE_VERSION = "1"


class Unavailable(Exception):
    """This machine cannot build or run roots: the message says why and what to install."""


def check_host() -> None:
    if os.geteuid() != 0:
        raise Unavailable("building in a Debian root needs root (debootstrap, chroot, mount)")
    for tool in ("debootstrap", "chroot", "mount"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not installed (Debian: apt-get install debootstrap)")


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:16]


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return [p for p in points if (p + "/").startswith(prefix)]


def _refuse_if_mounted(path: Path) -> None:
    # A recursive copy or removal would walk into a mounted /proc (or worse, a host /dev).
    mounted = _mounts_under(path)
    if mounted:
        raise RuntimeError(f"{path} has file systems mounted inside it: {mounted}")


def remove_root(path: Path) -> None:
    if path.exists():
        _refuse_if_mounted(path)
        shutil.rmtree(path)


def copy_root(source: Path, target: Path) -> None:
    _refuse_if_mounted(source)
    subprocess.run(["cp", "-a", "--one-file-system", str(source), str(target)], check=True)


@contextlib.contextmanager
def proc_mounted(root: Path) -> Iterator[None]:
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(root / "proc")], check=True)


def chroot_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for commands in a root: nothing of the host's leaks in."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
    }
    env.update(extra or {})
    return env


def in_root(root: Path, script: str) -> None:
    with proc_mounted(root):
        subprocess.run(
            ["chroot", str(root), "/bin/sh", "-ec", script], check=True, env=chroot_env()
        )


def _finish(partial: Path, final: Path) -> Path:
    partial.rename(final)
    return final


def minbase_root(cache: Path, arch: str = "x86_64") -> Path:
    """The bare bullseye root (no Python in it), made once and kept in the cache."""
    final = cache / "roots" / f"{SUITE}-minbase-{arch}"
    if final.exists():
        return final
    check_host()
    partial = final.with_name(final.name + ".partial")
    remove_root(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    debian_arch = ARCHES[arch][0]
    print(f"debootstrap --variant=minbase {SUITE} ({debian_arch}) ...", file=sys.stderr)
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--arch={debian_arch}", SUITE, str(partial), MIRROR],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return _finish(partial, final)


def _toolchain_key(arch: str) -> str:
    recipe = "\n".join(
        [RECIPE_VERSION, SUITE, arch, PYTHON_SOURCE_SUITE, PYTHON_SOURCE_PACKAGE, *BUILD_PACKAGES]
    )
    return _digest(recipe.encode())


def toolchain_root(cache: Path, arch: str = "x86_64") -> Path:
    """bullseye with a compiler and CPython 3.11 built in ``PYTHON_PREFIX``."""
    final = cache / "roots" / f"toolchain-{arch}-{_toolchain_key(arch)}"
    if final.exists():
        return final
    base = minbase_root(cache, arch)
    partial = final.with_name(final.name + ".partial")
    remove_root(partial)
    copy_root(base, partial)
    (partial / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {SUITE} main\ndeb-src {MIRROR} {PYTHON_SOURCE_SUITE} main\n"
    )
    print("compiler and CPython 3.11 in the build root ...", file=sys.stderr)
    # The shared libpython is what PyInstaller bundles; the rpath lets the build's own python
    # find it without LD_LIBRARY_PATH. No ensurepip: pip comes as a wheel from PyPI later.
    in_root(
        partial,
        f"""
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends {" ".join(BUILD_PACKAGES)} >/dev/null
        mkdir -p /src && cd /src
        apt-get source --download-only -qq {PYTHON_SOURCE_PACKAGE}
        tar xzf {PYTHON_SOURCE_PACKAGE}_*.orig.tar.gz
        cd Python-*/
        ./configure -q --prefix={PYTHON_PREFIX} --enable-shared --without-ensurepip \
            LDFLAGS=-Wl,-rpath,{PYTHON_PREFIX}/lib >/dev/null
        make -s -j"$(nproc)" >/dev/null 2>&1
        make -s install >/dev/null 2>&1
        cd / && rm -rf /src && apt-get clean
        {PYTHON_PREFIX}/bin/python3 -c 'import ssl, ctypes, lzma, bz2, zlib'
        """,
    )
    return _finish(partial, final)


def _source_files() -> list[Path]:
    files = [ROOT / "pyproject.toml", Path(__file__).resolve()]
    files += sorted(STANDALONE.iterdir())
    files += sorted(p for p in (ROOT / "src" / "secretsd").rglob("*.py"))
    return files


def layer_key(arch: str = "x86_64") -> str:
    """What the layer is made from: the recipe and every source file that can end in it."""
    parts = [_toolchain_key(arch).encode()]
    for path in _source_files():
        parts += [str(path.relative_to(ROOT)).encode(), path.read_bytes()]
    return _digest(*parts)


def cached_layer(cache: Path, arch: str = "x86_64") -> Path:
    return cache / "layers" / f"secretsd-agent-layer-{arch}-{layer_key(arch)}.zip"


def _download_wheels(target: Path, arch: str) -> None:
    """On the host (it reaches PyPI): the agent and PyInstaller, as wheels for the root."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(target),
         str(ROOT)],
        check=True,
    )  # fmt: skip
    [wheel] = target.glob("secretsd-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(target),
         "--platform", ARCHES[arch][1], "--implementation", "cp", "--python-version", "3.11",
         "--only-binary=:all:", "pip", *FREEZER, f"{wheel}[agent]"],
        check=True,
    )  # fmt: skip


def _freeze(work: Path) -> None:
    keep = " ".join(BOTOCORE_SERVICES)
    in_root(
        work,
        f"""
        py={PYTHON_PREFIX}/bin/python3
        $py "$(ls /wheels/pip-*.whl)/pip" install --quiet --no-index --find-links /wheels \
            pip {" ".join(repr(f) for f in FREEZER)} "$(ls /wheels/secretsd-*.whl)[agent]"
        data="$($py -c 'import botocore, os; print(os.path.dirname(botocore.__file__))')/data"
        for service in "$data"/*/; do
            name="$(basename "$service")"
            case " {keep} " in *" $name "*) ;; *) rm -rf "$service" ;; esac
        done
        cd /freeze
        $py -m PyInstaller --noconfirm --clean --log-level WARN --onedir --strip \
            --name secretsd-agent --distpath /freeze/dist --workpath /freeze/work \
            --specpath /freeze --collect-data botocore --exclude-module tkinter \
            --exclude-module secretsd.server --exclude-module secretsd.service \
            --exclude-module secretsd.store --exclude-module secretsd.api \
            --exclude-module secretsd.rotation entry.py
        """,
    )


def _zip_tree(tree: Path, archive: Path) -> None:
    """Zip with each file's mode, which Lambda keeps when it unpacks a layer."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(tree.rglob("*")):
            if path.is_dir():
                continue
            info = zipfile.ZipInfo(
                path.relative_to(tree).as_posix(), date_time=(2020, 1, 1, 0, 0, 0)
            )
            info.external_attr = (stat.S_IFREG | (path.stat().st_mode & 0o777)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())


def unpack(archive: Path, target: Path) -> None:
    """Unpack a layer as Lambda does, modes included (``zipfile`` alone drops them)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, target))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)


def build(cache: Path = DEFAULT_CACHE, arch: str = "x86_64") -> Path:
    """The layer zip for the current sources, from the cache or built now."""
    layer = cached_layer(cache, arch)
    if layer.exists():
        return layer
    check_host()
    toolchain = toolchain_root(cache, arch)
    work = cache / "roots" / f"work-{os.getpid()}"
    remove_root(work)
    try:
        copy_root(toolchain, work)
        _download_wheels(work / "wheels", arch)
        (work / "freeze").mkdir()
        shutil.copy2(STANDALONE / "entry.py", work / "freeze" / "entry.py")
        print("freezing the agent in the build root ...", file=sys.stderr)
        _freeze(work)
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "layer"
            shutil.copytree(work / "freeze" / "dist" / "secretsd-agent", tree / PROGRAM_DIR)
            (tree / "extensions").mkdir()
            shutil.copy2(STANDALONE / "secretsd-agent", tree / EXTENSION)
            layer.parent.mkdir(parents=True, exist_ok=True)
            partial = layer.with_name(layer.name + ".partial")
            _zip_tree(tree, partial)
            partial.rename(layer)
    finally:
        remove_root(work)
    return layer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "lambda")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--arch", choices=sorted(ARCHES), default="x86_64")
    args = parser.parse_args(argv)
    try:
        layer = build(args.cache_dir, args.arch)
        minbase_root(args.cache_dir, args.arch)  # the tests run the layer in it
    except Unavailable as exc:
        print(f"cannot build the layer here: {exc}", file=sys.stderr)
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    target = args.output / f"secretsd-agent-layer-{args.arch}.zip"
    shutil.copy2(layer, target)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())

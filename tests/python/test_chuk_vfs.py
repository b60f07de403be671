"""The Python binding end to end: the API alone, and the API with a live
mount used by real tools (subprocesses) at the same time."""
import asyncio
import errno
import os
import stat
import subprocess
import sys

import pytest

import chuk_vfs
from chuk_vfs import MountOptions, SecurityConfig, VirtualFS, mount
from conftest import sqlite_vfs

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, check=True, timeout=60, **kw)


# ---- the API alone ----

def test_version_and_library():
    assert chuk_vfs.version() == chuk_vfs.__version__
    assert os.path.exists(chuk_vfs.library_path) or "chuk-vfs" in chuk_vfs.library_path


def test_files_and_dirs(vfs):
    vfs.mkdir("/src/pkg")  # parents=True, exist_ok=True by default
    vfs.mkdir("/src/pkg")
    assert vfs.write_file("/src/pkg/a.txt", "héllo") == len("héllo".encode())
    assert vfs.read_file("/src/pkg/a.txt") == "héllo".encode()
    assert vfs.read_text("/src/pkg/a.txt") == "héllo"
    vfs.write_file("/src/pkg/a.txt", b" more", append=True)
    assert vfs.read_text("/src/pkg/a.txt") == "héllo more"
    vfs.write_file("/src/b.bin", bytes(range(256)) * 1000)
    assert vfs.read_file("/src/b.bin") == bytes(range(256)) * 1000
    vfs.write_file("/empty", b"")
    assert vfs.read_file("/empty") == b""
    assert vfs.ls("/src") == ["b.bin", "pkg"]
    assert vfs.ls("/") == ["empty", "src"]
    assert vfs.exists("/src/pkg/a.txt") and not vfs.exists("/nope")
    assert vfs.is_dir("/src") and vfs.is_file("/src/b.bin") and not vfs.is_file("/src")
    st = vfs.stat("/src/b.bin")
    assert isinstance(st, os.stat_result)
    assert stat.S_ISREG(st.st_mode) and st.st_size == 256000 and st.st_nlink == 1
    assert st.st_mode & 0o777 == 0o644
    assert isinstance(st.st_mtime, float) and st.st_mtime_ns > 0
    names = [n for n, _ in vfs.ls_stat("/src")]
    assert names == ["b.bin", "pkg"]
    assert list(vfs.walk("/")) == [("/", ["src"], ["empty"]), ("/src", ["pkg"], ["b.bin"]),
                                   ("/src/pkg", [], ["a.txt"])]

    vfs.mv("/src/b.bin", "/src/pkg/c.bin")
    assert not vfs.exists("/src/b.bin") and vfs.stat("/src/pkg/c.bin").st_size == 256000
    vfs.cp("/src/pkg/a.txt", "/a-copy.txt")
    assert vfs.read_text("/a-copy.txt") == "héllo more"
    vfs.cp("/src", "/src2", recursive=True)
    assert vfs.ls("/src2/pkg") == ["a.txt", "c.bin"]

    vfs.symlink("src/pkg/a.txt", "/link")
    assert vfs.readlink("/link") == "src/pkg/a.txt"
    assert vfs.read_text("/link") == "héllo more"
    assert stat.S_ISLNK(vfs.lstat("/link").st_mode)
    vfs.link("/a-copy.txt", "/hard")
    assert vfs.stat("/hard").st_nlink == 2

    vfs.chmod("/a-copy.txt", 0o600)
    assert vfs.stat("/a-copy.txt").st_mode & 0o777 == 0o600
    vfs.utime("/a-copy.txt", ns=(1_000_000_001, 2_000_000_002))
    st = vfs.stat("/a-copy.txt")
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_001, 2_000_000_002)
    vfs.utime("/a-copy.txt", (5.5, 6.25))
    assert vfs.stat("/a-copy.txt").st_mtime == 6.25
    vfs.truncate("/a-copy.txt", 3)
    assert vfs.read_file("/a-copy.txt") == "hé".encode()

    vfs.setxattr("/src", "user.owner", b"agent-7")
    vfs.set_xattr("/src", "user.tag", "x")
    assert vfs.getxattr("/src", "user.owner") == b"agent-7"
    assert sorted(vfs.listxattr("/src")) == ["user.owner", "user.tag"]
    vfs.removexattr("/src", "user.tag")
    assert vfs.listxattr("/src") == ["user.owner"]

    vfs.rm("/src", recursive=True)
    assert not vfs.exists("/src") and vfs.ls("/") == sorted(["empty", "src2", "a-copy.txt",
                                                             "link", "hard"])


def test_open_file_objects(vfs):
    with vfs.open("/t.txt", "w") as f:
        f.write("line 1\nline 2\n")
        print("line 3", file=f)
    with vfs.open("/t.txt") as f:
        assert f.readlines() == ["line 1\n", "line 2\n", "line 3\n"]
    with vfs.open("/t.txt", "a") as f:
        f.write("line 4\n")
    assert vfs.read_text("/t.txt").splitlines()[-1] == "line 4"
    with vfs.open("/b", "wb") as f:
        f.write(b"0123456789")
    with vfs.open("/b", "r+b") as f:
        f.seek(4)
        f.write(b"xy")
        f.seek(-2, os.SEEK_END)
        assert f.read() == b"89"
        assert f.tell() == 10
    assert vfs.read_file("/b") == b"0123xy6789"
    with vfs.open("/b", "rb", buffering=0) as raw:
        assert raw.pread(3, 1) == b"123"
        assert raw.read(2) == b"01"
    with pytest.raises(FileExistsError):
        vfs.open("/b", "xb")
    with vfs.open("/new", "x") as f:
        f.write("fresh")
    assert vfs.read_text("/new") == "fresh"
    with pytest.raises(FileNotFoundError):
        vfs.open("/nope")
    with pytest.raises(IsADirectoryError):
        vfs.open("/")
    with pytest.raises(ValueError):
        vfs.open("/b", "rw")
    f = vfs.open("/b", "rb")
    f.close()
    assert f.closed
    with pytest.raises(ValueError):
        f.read()


def test_errors_are_oserror_subclasses(vfs):
    vfs.mkdir("/d")
    vfs.write_file("/d/f", "x")
    cases = [
        (FileNotFoundError, errno.ENOENT, lambda: vfs.read_file("/missing")),
        (FileNotFoundError, errno.ENOENT, lambda: vfs.stat("/missing")),
        (FileNotFoundError, errno.ENOENT, lambda: vfs.ls("/missing")),
        (FileNotFoundError, errno.ENOENT, lambda: vfs.rm("/missing")),
        (FileNotFoundError, errno.ENOENT, lambda: vfs.write_file("/no/dir/f", "x")),
        (FileExistsError, errno.EEXIST, lambda: vfs.mkdir("/d", exist_ok=False)),
        (FileExistsError, errno.EEXIST, lambda: vfs.mkdir("/d", parents=False, exist_ok=False)),
        (FileExistsError, errno.EEXIST, lambda: vfs.write_file("/d/f", "y", exclusive=True)),
        (FileExistsError, errno.EEXIST, lambda: vfs.symlink("x", "/d/f")),
        (IsADirectoryError, errno.EISDIR, lambda: vfs.read_file("/d")),
        (IsADirectoryError, errno.EISDIR, lambda: vfs.write_file("/d", "x")),
        (IsADirectoryError, errno.EISDIR, lambda: vfs.cp("/d", "/d2")),
        (NotADirectoryError, errno.ENOTDIR, lambda: vfs.ls("/d/f")),
        (NotADirectoryError, errno.ENOTDIR, lambda: vfs.read_file("/d/f/g")),
        (FileExistsError, errno.EEXIST, lambda: vfs.mkdir("/d/f")),
        (OSError, errno.ENOTEMPTY, lambda: vfs.rm("/d")),
        (PermissionError, errno.EPERM, lambda: vfs.link("/d", "/dl")),
        (OSError, errno.ENODATA, lambda: vfs.getxattr("/d", "user.none")),
        (OSError, errno.EINVAL, lambda: vfs.readlink("/d/f")),
    ]
    for cls, code, fn in cases:
        with pytest.raises(cls) as ei:
            fn()
        assert ei.value.errno == code, (ei.value, code)
        assert ei.value.strerror == os.strerror(code)
    with pytest.raises(FileNotFoundError) as ei:
        vfs.mv("/missing", "/elsewhere")
    assert ei.value.filename == "/missing" and ei.value.filename2 == "/elsewhere"
    with pytest.raises(FileNotFoundError) as ei:
        vfs.read_file("/missing")
    assert ei.value.filename == "/missing"
    with pytest.raises(OSError) as ei:
        VirtualFS("no-such-store")
    assert "unknown store" in str(ei.value)
    with pytest.raises(OSError) as ei:
        VirtualFS("memory", umask="999")
    assert ei.value.errno == errno.EINVAL


def test_options_map_to_store_keys(tmp_path):
    v = VirtualFS("memory", umask=0o077)
    v.write_file("/f", "x")
    assert v.stat("/f").st_mode & 0o777 == 0o600
    v.close()
    assert v.closed
    with pytest.raises(ValueError):
        v.ls("/")


def test_sqlite_backend_persists(tmp_path):
    db = tmp_path / "ws.db"
    with sqlite_vfs(db) as v:
        v.mkdir("/proj")
        v.write_file("/proj/main.py", "print('persisted')\n")
    with sqlite_vfs(db) as v:
        assert v.read_text("/proj/main.py") == "print('persisted')\n"
    with VirtualFS("sqlite", db_path=str(db), readonly=True) as v:
        assert v.ls("/proj") == ["main.py"]
        with pytest.raises(OSError) as ei:
            v.write_file("/proj/x", "y")
        assert ei.value.errno == errno.EROFS


# ---- the API and a live mount together ----

def test_agent_writes_tools_see_it(vfs, mnt):
    with mount(vfs, mnt, MountOptions(cache_timeout=100)) as m:
        assert m.mounted
        vfs.mkdir("/proj/pkg")
        vfs.write_file("/proj/pkg/mod.py", "def f():\n    return 42\n")
        vfs.write_file("/proj/main.py", "from pkg.mod import f\nprint(f())\n")
        # the mount shows it at once, to other processes
        assert run("cat", f"{mnt}/proj/pkg/mod.py").stdout == b"def f():\n    return 42\n"
        assert run("ls", f"{mnt}/proj").stdout.split() == [b"main.py", b"pkg"]
        run(PY, "-m", "py_compile", f"{mnt}/proj/pkg/mod.py")
        out = run(PY, "main.py", cwd=f"{mnt}/proj", env={**os.environ,
                                                          "PYTHONDONTWRITEBYTECODE": "1"})
        assert out.stdout == b"42\n"
        # the agent edits; the next run sees the edit (100 s cache timeout)
        vfs.write_file("/proj/pkg/mod.py", "def f():\n    return 'changed, and longer'\n")
        out = run(PY, "main.py", cwd=f"{mnt}/proj", env={**os.environ,
                                                          "PYTHONDONTWRITEBYTECODE": "1"})
        assert out.stdout == b"changed, and longer\n"
        # a syntax error the agent writes is what the compiler sees
        vfs.write_file("/proj/pkg/mod.py", "def f(:\n")
        bad = subprocess.run([PY, "-m", "py_compile", f"{mnt}/proj/pkg/mod.py"],
                             capture_output=True)
        assert bad.returncode != 0 and b"SyntaxError" in bad.stderr

        # a tool writes output through the mount; the API reads it back
        run("sh", "-c", "mkdir -p out/logs && echo built > out/status.txt && "
            "seq 1 20000 > out/logs/numbers.txt && mv out/status.txt out/STATUS && "
            "ln -s STATUS out/latest && chmod 600 out/STATUS", cwd=f"{mnt}/proj")
        assert vfs.read_text("/proj/out/STATUS") == "built\n"
        assert vfs.read_text("/proj/out/latest") == "built\n"
        assert vfs.readlink("/proj/out/latest") == "STATUS"
        assert vfs.stat("/proj/out/STATUS").st_mode & 0o777 == 0o600
        assert not vfs.exists("/proj/out/status.txt")
        nums = vfs.read_text("/proj/out/logs/numbers.txt").split()
        assert len(nums) == 20000 and nums[-1] == "20000"
        assert vfs.ls("/proj/out") == ["STATUS", "latest", "logs"]
        # the API removes what the tool wrote; the mount forgets it
        vfs.rm("/proj/out", recursive=True)
        assert subprocess.run(["ls", f"{mnt}/proj/out"], capture_output=True).returncode != 0
        assert not os.path.exists(f"{mnt}/proj/out")
        # the status xattr of the mount root
        js = os.getxattr(mnt, "user.chuk-vfs.status")
        assert b'"store":"memory"' in js
    assert not m.mounted
    assert not os.path.ismount(mnt)


def test_rewrites_seen_at_once_through_the_mount(vfs, mnt):
    with mount(vfs, mnt, MountOptions(cache_timeout=100)):
        for i, size in enumerate([10, 5000, 3, 70000, 0, 4096, 1, 200000, 17]):
            data = (b"%d-" % i) * (size // 2 + 1)
            data = data[:size]
            vfs.write_file("/f", data)
            with open(f"{mnt}/f", "rb") as f:
                assert f.read() == data, i
            assert os.stat(f"{mnt}/f").st_size == size
        vfs.chmod("/f", 0o751)
        assert os.stat(f"{mnt}/f").st_mode & 0o777 == 0o751
        vfs.utime("/f", ns=(3_000_000_000, 4_000_000_005))
        assert os.stat(f"{mnt}/f").st_mtime_ns == 4_000_000_005
        vfs.setxattr("/f", "user.k", b"v1")
        assert os.getxattr(f"{mnt}/f", "user.k") == b"v1"
        vfs.mv("/f", "/g")
        assert not os.path.exists(f"{mnt}/f") and os.path.exists(f"{mnt}/g")
        # and the mount's writes, read back at once
        with open(f"{mnt}/h", "w") as f:
            f.write("from the mount")
        assert vfs.read_text("/h") == "from the mount"
        os.rename(f"{mnt}/h", f"{mnt}/i")
        assert vfs.ls("/") == ["g", "i"]
        os.unlink(f"{mnt}/i")
        assert not vfs.exists("/i")


def test_file_object_writes_seen_through_the_mount(vfs, mnt):
    with mount(vfs, mnt, MountOptions(cache_timeout=100)):
        with vfs.open("/log.txt", "w") as f:
            f.write("one\n")
        assert run("cat", f"{mnt}/log.txt").stdout == b"one\n"
        with vfs.open("/log.txt", "a") as f:
            f.write("two\n")
        assert run("cat", f"{mnt}/log.txt").stdout == b"one\ntwo\n"


def test_errors_through_the_mount_match(vfs, mnt):
    vfs.mkdir("/d")
    vfs.write_file("/d/f", "x")
    with mount(vfs, mnt):
        with pytest.raises(FileNotFoundError):
            open(f"{mnt}/missing")
        with pytest.raises(FileNotFoundError):
            vfs.read_file("/missing")
        with pytest.raises(IsADirectoryError):
            open(f"{mnt}/d")
        with pytest.raises(IsADirectoryError):
            vfs.read_file("/d")
        with pytest.raises(OSError) as a:
            os.rmdir(f"{mnt}/d")
        with pytest.raises(OSError) as b:
            vfs.rm("/d")
        assert a.value.errno == b.value.errno == errno.ENOTEMPTY


def test_start_stop_and_reuse(vfs, mnt):
    m = mount(vfs, mnt)
    assert m.start() is m
    assert os.path.ismount(mnt)
    with pytest.raises(RuntimeError):
        m.start()
    vfs.write_file("/x", "1")
    assert open(f"{mnt}/x").read() == "1"
    m.stop()
    m.stop()  # twice is fine
    assert not os.path.ismount(mnt)
    m.start()  # again
    assert open(f"{mnt}/x").read() == "1"
    vfs.close()  # stops its mounts first
    assert not m.mounted and not os.path.ismount(mnt)


def test_async_with_mount(vfs, mnt):
    async def main():
        async with mount(vfs, mnt, MountOptions(cache_timeout=5)) as m:
            assert m.mounted and os.path.ismount(mnt)
            vfs.write_file("/async.txt", "hi")
            proc = await asyncio.create_subprocess_exec(
                "cat", f"{mnt}/async.txt", stdout=asyncio.subprocess.PIPE)
            out, _ = await proc.communicate()
            assert out == b"hi"
        assert not os.path.ismount(mnt)
        m2 = mount(vfs, mnt)
        await m2.mount_async()
        assert os.path.ismount(mnt)
        await m2.unmount_async()
        assert not os.path.ismount(mnt)
    asyncio.run(main())


def test_mount_errors(vfs, tmp_path, mnt):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NotADirectoryError) as ei:
        mount(vfs, str(f)).start()
    assert "not a directory" in str(ei.value)
    with mount(vfs, mnt):
        with pytest.raises(OSError) as ei:
            mount(vfs, mnt).start()
        assert ei.value.errno == errno.EBUSY and "already mounted" in str(ei.value)


def test_readonly_mount(vfs, mnt):
    vfs.write_file("/f", "x")
    with mount(vfs, mnt, MountOptions(readonly=True)):
        with pytest.raises(OSError) as ei:
            open(f"{mnt}/g", "w")
        assert ei.value.errno == errno.EROFS
        assert open(f"{mnt}/f").read() == "x"


def test_security_config_enforced(mnt):
    sc = SecurityConfig(max_file_size=1024, allowed_extensions=[".py", ""],
                        blocked_paths=["/secrets"])
    assert not sc.is_default() and SecurityConfig().is_default()
    with VirtualFS(security=sc) as v:
        # through the API
        v.write_file("/ok.py", "x = 1\n")
        with pytest.raises(PermissionError):
            v.write_file("/bad.exe", "no")
        with pytest.raises(OSError) as ei:
            v.write_file("/big.py", b"x" * 2048)
        assert ei.value.errno == errno.EFBIG
        with pytest.raises(OSError):
            v.mkdir("/secrets")
        # and through the mount, the same policy
        with mount(v, mnt):
            assert open(f"{mnt}/ok.py").read() == "x = 1\n"
            with pytest.raises(PermissionError):
                open(f"{mnt}/bad.exe", "w")
            with pytest.raises(OSError) as ei:
                with open(f"{mnt}/big2.py", "wb") as f:
                    f.write(b"y" * 4096)
            assert ei.value.errno == errno.EFBIG
            assert not os.path.exists(f"{mnt}/secrets")
            # a policy given to mount() instead of VirtualFS is refused
            with pytest.raises(ValueError):
                mount(v, mnt + "2", security=SecurityConfig(read_only=True))
    # read_only: the API and the mount refuse changes
    with VirtualFS(security=SecurityConfig(read_only=True)) as v:
        with pytest.raises(OSError) as ei:
            v.write_file("/g", "x")
        assert ei.value.errno == errno.EROFS
        with mount(v, mnt):
            with pytest.raises(OSError) as ei:
                open(f"{mnt}/g", "w")
            assert ei.value.errno == errno.EROFS
    # a bad policy is a clear error at open, never a weaker policy
    with pytest.raises(OSError) as ei:
        VirtualFS(security=SecurityConfig(profile="no-such-profile"))
    assert ei.value.errno == errno.EINVAL


def test_sqlite_mount(tmp_path, mnt):
    db = tmp_path / "m.db"
    with sqlite_vfs(db) as v:
        with mount(v, mnt):
            v.write_file("/a.txt", "from the api")
            assert run("cat", f"{mnt}/a.txt").stdout == b"from the api"
            run("sh", "-c", f"echo from the mount > {mnt}/b.txt")
            assert v.read_text("/b.txt") == "from the mount\n"
    with sqlite_vfs(db) as v:
        assert v.ls("/") == ["a.txt", "b.txt"]


def test_mount_blocking_in_a_thread(vfs, mnt):
    import threading
    import time
    m = mount(vfs, mnt)
    errors = []

    def serve():
        try:
            m.mount_blocking()
        except Exception as e:  # pragma: no cover
            errors.append(e)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    for _ in range(200):
        if os.path.ismount(mnt):
            break
        time.sleep(0.05)
    assert os.path.ismount(mnt)
    vfs.write_file("/blk", "served")
    assert run("cat", f"{mnt}/blk").stdout == b"served"
    run("fusermount3", "-u", mnt)
    t.join(20)
    assert not t.is_alive() and not errors

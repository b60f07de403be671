"""chuk_vfs: the chuk-vfs virtual filesystem from Python.

    from chuk_vfs import VirtualFS, mount, MountOptions

    with VirtualFS("sqlite", db_path="ws.db") as vfs:
        vfs.write_file("/src/main.py", "print('hi')\\n")
        with mount(vfs, "/tmp/ws", MountOptions(cache_timeout=60)) as m:
            subprocess.run(["python3", "/tmp/ws/src/main.py"])

A change made here while the filesystem is mounted is seen through the mount
on the next access; a change made through the mount is seen here at once.
Errors raise OSError subclasses with errno set (FileNotFoundError,
FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError...).
The library is thread-safe; calls release the GIL.
"""
import asyncio
import ctypes
import errno as _errno
import io
import os
import stat as _stat
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Union

from . import _native as _n
from ._native import lib as _lib

__all__ = ["VirtualFS", "VFSFile", "MountOptions", "SecurityConfig", "MountAdapter", "mount",
           "version", "library_path"]

__version__ = _lib.cvfs_version().decode()
library_path = _n.lib_path

PathT = Union[str, bytes, os.PathLike]


def version() -> str:
    """The library's version."""
    return _lib.cvfs_version().decode()


def _p(path: PathT) -> bytes:
    return os.fsencode(path)


def _err(rc: int, path=None, path2=None) -> OSError:
    e = -rc
    name = os.fsdecode(path) if path is not None else None
    if path2 is not None:
        return OSError(e, os.strerror(e), name, None, os.fsdecode(path2))
    return OSError(e, os.strerror(e), name)


def _check(rc: int, path=None, path2=None) -> int:
    if rc < 0:
        raise _err(rc, path, path2)
    return rc


def _take_msg(ptr: ctypes.c_void_p) -> Optional[str]:
    if not ptr.value:
        return None
    msg = ctypes.string_at(ptr.value).decode(errors="replace")
    _lib.cvfs_free(ptr)
    return msg


def _to_stat_result(st: _n.Stat) -> os.stat_result:
    def ns(ts):
        return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    a, m, c = ns(st.st_atim), ns(st.st_mtim), ns(st.st_ctim)
    return os.stat_result(
        (st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, st.st_size,
         a // 1_000_000_000, m // 1_000_000_000, c // 1_000_000_000),
        {"st_atime": a / 1e9, "st_mtime": m / 1e9, "st_ctime": c / 1e9,
         "st_atime_ns": a, "st_mtime_ns": m, "st_ctime_ns": c,
         "st_blksize": st.st_blksize, "st_blocks": st.st_blocks, "st_rdev": st.st_rdev})


# Store options by the original tool's names, mapped to the library's keys.
_OPTION_KEYS = {
    "db_path": "path", "path": "path",
    "redis_url": "url", "url": "url", "redis_prefix": "prefix",
    "bucket": "bucket", "s3_prefix": "prefix", "prefix": "prefix", "region": "region",
    "endpoint_url": "endpoint", "endpoint": "endpoint",
    "readonly": "readonly", "read_only": "readonly", "umask": "umask", "size": "size",
}


def _option_value(key: str, value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if key == "umask" and isinstance(value, int):
        return format(value, "o")
    return str(value)


@dataclass
class SecurityConfig:
    """A security policy, enforced by the library on the API and on every
    mount of the VirtualFS it is given to (see docs/security.md).

    profile: "default", "strict", "readonly", "untrusted" or "testing";
    extra: any other policy setting as {key: value} (e.g. {"max_files": 1000,
    "deny_name": "*.pem"})."""
    max_file_size: Optional[int] = None
    allowed_extensions: Optional[Sequence[str]] = None
    blocked_paths: Optional[Sequence[str]] = None
    read_only: bool = False
    profile: Optional[str] = None
    extra: Optional[dict] = None

    def _options(self) -> List[bytes]:
        out = []
        if self.profile:
            out.append(f"policy.profile={self.profile}")
        if self.max_file_size is not None:
            out.append(f"policy.max_file_size={int(self.max_file_size)}")
        if self.allowed_extensions:
            out.append("policy.allow_ext=" + ",".join(self.allowed_extensions))
        for p in self.blocked_paths or ():
            out.append(f"policy.block_path={p}")
        if self.read_only:
            out.append("policy.readonly=1")
        for k, v in (self.extra or {}).items():
            out.append(f"policy.{k}={v}")
        return [o.encode() for o in out]

    def is_default(self) -> bool:
        return not self._options()


@dataclass
class MountOptions:
    readonly: bool = False
    allow_other: bool = False
    debug: bool = False
    cache_timeout: Optional[float] = None  # None: the store's default
    threads: Optional[int] = None  # None: the default
    fuse_opts: Optional[Union[str, Iterable[str]]] = None

    def _config(self, readonly: bool = False) -> _n.MountConfig:
        opts = self.fuse_opts
        if opts is not None and not isinstance(opts, str):
            opts = ",".join(opts)
        self._fuse_opts_b = opts.encode() if opts else None  # kept alive with the config
        return _n.MountConfig(
            readonly=int(bool(self.readonly or readonly)), allow_other=int(bool(self.allow_other)),
            debug=int(bool(self.debug)),
            cache_timeout=-1.0 if self.cache_timeout is None else float(self.cache_timeout),
            threads=int(self.threads or 0), fuse_opts=self._fuse_opts_b)


class VirtualFS:
    """A filesystem on a store: "memory" (default), "sqlite", "redis" or "s3".

    Options (the original tool's names): db_path (sqlite), redis_url,
    redis_prefix (redis), bucket, s3_prefix, region, endpoint_url (s3),
    readonly, umask; any other key=value is passed to the store as is."""

    def __init__(self, backend: str = "memory", security: Optional[SecurityConfig] = None,
                 **options):
        self.backend = backend
        self.security = security
        self._mounts = []
        kv = []
        for k, v in options.items():
            if v is None:
                continue
            key = _OPTION_KEYS.get(k, k)
            kv.append(f"{key}={_option_value(key, v)}".encode())
        if security is not None:
            kv.extend(security._options())
        arr = (ctypes.c_char_p * (len(kv) + 1))(*kv, None)
        fs = ctypes.c_void_p()
        msg = ctypes.c_void_p()
        rc = _lib.cvfs_open(backend.encode(), arr, ctypes.byref(fs), ctypes.byref(msg))
        text = _take_msg(msg)
        if rc < 0:
            e = -rc
            raise OSError(e, f"cannot open the {backend} store: {text or os.strerror(e)}")
        self._fs = fs

    # -- lifetime --
    @property
    def closed(self) -> bool:
        return self._fs is None

    def _h(self):
        if self._fs is None:
            raise ValueError("I/O operation on a closed VirtualFS")
        return self._fs

    def close(self) -> None:
        """Stops this filesystem's mounts, then closes it."""
        for m in list(self._mounts):
            m.stop()
        if self._fs is not None:
            _lib.cvfs_close(self._fs)
            self._fs = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if getattr(self, "_fs", None) is not None and not self._mounts:
                self.close()
        except Exception:
            pass

    def __repr__(self):
        return f"<VirtualFS {self.backend}{' closed' if self.closed else ''}>"

    # -- files --
    def write_file(self, path: PathT, data: Union[bytes, bytearray, memoryview, str],
                   mode: int = 0o644, append: bool = False, exclusive: bool = False,
                   encoding: str = "utf-8") -> int:
        """Creates or replaces path's contents; returns the bytes written."""
        if isinstance(data, str):
            data = data.encode(encoding)
        buf = bytes(data)
        flags = (_n.CVFS_APPEND if append else 0) | (_n.CVFS_EXCL if exclusive else 0)
        return _check(_lib.cvfs_write_file(self._h(), _p(path), buf, len(buf), mode, flags), path)

    def read_file(self, path: PathT) -> bytes:
        data = ctypes.c_void_p()
        n = ctypes.c_size_t()
        _check(_lib.cvfs_read_file(self._h(), _p(path), ctypes.byref(data), ctypes.byref(n)), path)
        try:
            return ctypes.string_at(data.value, n.value) if n.value else b""
        finally:
            _lib.cvfs_free(data)

    def read_text(self, path: PathT, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read_file(path).decode(encoding, errors)

    def write_text(self, path: PathT, text: str, encoding: str = "utf-8", **kw) -> int:
        return self.write_file(path, text.encode(encoding), **kw)

    def truncate(self, path: PathT, size: int) -> None:
        _check(_lib.cvfs_truncate(self._h(), _p(path), size), path)

    def open(self, path: PathT, mode: str = "r", buffering: int = -1,
             encoding: Optional[str] = None, errors: Optional[str] = None,
             newline: Optional[str] = None, perm: int = 0o644):
        """A file object like open()'s: binary ('rb', 'wb', 'ab', 'r+b', 'xb')
        or text ('r', 'w', ...)."""
        return _open(self, path, mode, buffering, encoding, errors, newline, perm)

    # -- names --
    def mkdir(self, path: PathT, parents: bool = True, exist_ok: bool = True,
              mode: int = 0o777) -> None:
        h = self._h()
        if parents and not exist_ok and self.exists(path):
            raise _err(-_errno.EEXIST, path)
        rc = _lib.cvfs_mkdir(h, _p(path), mode, int(bool(parents)))
        if rc == -_errno.EEXIST and exist_ok and self.is_dir(path):
            return
        if rc == -_errno.ENOTDIR and self.exists(path) and not self.is_dir(path):
            rc = -_errno.EEXIST  # as os.makedirs: the name is taken by a non-directory
        _check(rc, path)

    makedirs = mkdir

    def ls(self, path: PathT = "/") -> List[str]:
        """The names in a directory, sorted."""
        return sorted(name for name, _ in self._list(path))

    listdir = ls

    def ls_stat(self, path: PathT = "/"):
        """[(name, os.stat_result)] for a directory, sorted by name."""
        return sorted(((n, _to_stat_result(st)) for n, st in self._list(path)),
                      key=lambda e: e[0])

    def _list(self, path):
        out = []

        def take(_arg, name, stp):
            try:
                st = _n.Stat()
                ctypes.memmove(ctypes.byref(st), stp, ctypes.sizeof(_n.Stat))
                out.append((os.fsdecode(name), st))
                return 0
            except BaseException:  # never let an exception cross into C
                return 1
        cb = _n.LsFn(take)
        _check(_lib.cvfs_ls(self._h(), _p(path), cb, None), path)
        return out

    def walk(self, top: PathT = "/"):
        """Like os.walk (top-down)."""
        top = os.fsdecode(top)
        dirs, files = [], []
        for name, st in self.ls_stat(top):
            (dirs if _stat.S_ISDIR(st.st_mode) else files).append(name)
        yield top, dirs, files
        for d in dirs:
            yield from self.walk(top.rstrip("/") + "/" + d)

    def stat(self, path: PathT, follow_symlinks: bool = True) -> os.stat_result:
        st = _n.Stat()
        fn = _lib.cvfs_stat if follow_symlinks else _lib.cvfs_lstat
        _check(fn(self._h(), _p(path), ctypes.byref(st)), path)
        return _to_stat_result(st)

    def lstat(self, path: PathT) -> os.stat_result:
        return self.stat(path, follow_symlinks=False)

    def exists(self, path: PathT) -> bool:
        st = _n.Stat()
        return _lib.cvfs_stat(self._h(), _p(path), ctypes.byref(st)) == 0

    def is_dir(self, path: PathT) -> bool:
        st = _n.Stat()
        return (_lib.cvfs_stat(self._h(), _p(path), ctypes.byref(st)) == 0
                and _stat.S_ISDIR(st.st_mode))

    def is_file(self, path: PathT) -> bool:
        st = _n.Stat()
        return (_lib.cvfs_stat(self._h(), _p(path), ctypes.byref(st)) == 0
                and _stat.S_ISREG(st.st_mode))

    def rm(self, path: PathT, recursive: bool = False) -> None:
        _check(_lib.cvfs_remove(self._h(), _p(path), int(bool(recursive))), path)

    remove = rm

    def mv(self, src: PathT, dst: PathT, noreplace: bool = False) -> None:
        _check(_lib.cvfs_rename(self._h(), _p(src), _p(dst), 1 if noreplace else 0), src, dst)

    rename = mv

    def cp(self, src: PathT, dst: PathT, recursive: bool = False) -> None:
        _check(_lib.cvfs_copy(self._h(), _p(src), _p(dst), int(bool(recursive))), src, dst)

    copy = cp

    def symlink(self, target: PathT, linkpath: PathT) -> None:
        _check(_lib.cvfs_symlink(self._h(), _p(target), _p(linkpath)), linkpath)

    def readlink(self, path: PathT) -> str:
        buf = ctypes.create_string_buffer(4097)
        n = _check(_lib.cvfs_readlink(self._h(), _p(path), buf, 4096), path)
        return os.fsdecode(buf.raw[:n])

    def link(self, src: PathT, dst: PathT) -> None:
        _check(_lib.cvfs_link(self._h(), _p(src), _p(dst)), src, dst)

    def chmod(self, path: PathT, mode: int) -> None:
        _check(_lib.cvfs_chmod(self._h(), _p(path), mode), path)

    def chown(self, path: PathT, uid: int = -1, gid: int = -1) -> None:
        _check(_lib.cvfs_chown(self._h(), _p(path), uid & 0xFFFFFFFF, gid & 0xFFFFFFFF), path)

    def utime(self, path: PathT, times=None, *, ns=None) -> None:
        """As os.utime: times=(atime, mtime) in seconds, or ns=(atime_ns,
        mtime_ns); neither: now."""
        if times is not None and ns is not None:
            raise ValueError("utime: give times or ns, not both")
        if times is not None:
            ns = tuple(int(round(t * 1e9)) for t in times)
        if ns is None:
            arr = (_n.Timespec * 2)(_n.Timespec(0, _n.UTIME_NOW), _n.Timespec(0, _n.UTIME_NOW))
        else:
            arr = (_n.Timespec * 2)(*(_n.Timespec(v // 1_000_000_000, v % 1_000_000_000)
                                      for v in ns))
        _check(_lib.cvfs_utimens(self._h(), _p(path), arr), path)

    # -- extended attributes --
    def getxattr(self, path: PathT, name: str) -> bytes:
        h, pb, nb = self._h(), _p(path), name.encode()
        while True:
            n = _check(_lib.cvfs_getxattr(h, pb, nb, None, 0), path)
            buf = ctypes.create_string_buffer(max(n, 1))
            r = _lib.cvfs_getxattr(h, pb, nb, buf, n)
            if r == -_errno.ERANGE:
                continue  # grew meanwhile
            _check(r, path)
            return buf.raw[:r]

    def setxattr(self, path: PathT, name: str, value: Union[bytes, str], flags: int = 0) -> None:
        if isinstance(value, str):
            value = value.encode()
        _check(_lib.cvfs_setxattr(self._h(), _p(path), name.encode(), value, len(value), flags),
               path)

    def listxattr(self, path: PathT) -> List[str]:
        h, pb = self._h(), _p(path)
        while True:
            n = _check(_lib.cvfs_listxattr(h, pb, None, 0), path)
            if n == 0:
                return []
            buf = ctypes.create_string_buffer(n)
            r = _lib.cvfs_listxattr(h, pb, buf, n)
            if r == -_errno.ERANGE:
                continue
            _check(r, path)
            return [x.decode() for x in buf.raw[:r].split(b"\0") if x]

    def removexattr(self, path: PathT, name: str) -> None:
        _check(_lib.cvfs_removexattr(self._h(), _p(path), name.encode()), path)

    get_xattr, set_xattr, list_xattr, remove_xattr = getxattr, setxattr, listxattr, removexattr


# ---- file objects ----

class VFSFile(io.RawIOBase):
    """An unbuffered file of a VirtualFS (VirtualFS.open wraps it in io's
    buffered and text layers)."""

    def __init__(self, vfs: VirtualFS, path: PathT, flags: int, perm: int = 0o644):
        super().__init__()
        self._vfs = vfs
        self.name = os.fsdecode(path)
        self._flags = flags
        h = ctypes.c_void_p()
        _check(_lib.cvfs_file_open(vfs._h(), _p(path), flags, perm, ctypes.byref(h)), path)
        self._f = h

    @property
    def mode(self):
        acc = self._flags & os.O_ACCMODE
        return {os.O_RDONLY: "rb", os.O_WRONLY: "wb", os.O_RDWR: "r+b"}[acc]

    def readable(self):
        return (self._flags & os.O_ACCMODE) != os.O_WRONLY

    def writable(self):
        return (self._flags & os.O_ACCMODE) != os.O_RDONLY

    def seekable(self):
        return True

    def _handle(self):
        if self._f is None:
            raise ValueError("I/O operation on closed file")
        return self._f

    def readinto(self, b) -> int:
        mv = memoryview(b).cast("B")
        if len(mv) == 0:
            return 0
        buf = (ctypes.c_char * len(mv)).from_buffer(mv)
        return _check(_lib.cvfs_file_read(self._handle(), buf, len(mv)), self.name)

    def write(self, b) -> int:
        data = bytes(b)
        return _check(_lib.cvfs_file_write(self._handle(), data, len(data)), self.name)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return _check(_lib.cvfs_file_seek(self._handle(), offset, whence), self.name)

    def tell(self) -> int:
        return self.seek(0, io.SEEK_CUR)

    def truncate(self, size=None) -> int:
        if size is None:
            size = self.tell()
        self._vfs.truncate(self.name, size)
        return size

    def pread(self, n: int, offset: int) -> bytes:
        buf = ctypes.create_string_buffer(n)
        r = _check(_lib.cvfs_file_pread(self._handle(), buf, n, offset), self.name)
        return buf.raw[:r]

    def pwrite(self, data: bytes, offset: int) -> int:
        return _check(_lib.cvfs_file_pwrite(self._handle(), data, len(data), offset), self.name)

    def fileno(self):
        raise io.UnsupportedOperation("a VirtualFS file has no descriptor")

    def flush(self):
        pass

    def fsync(self):
        _check(_lib.cvfs_file_sync(self._handle()), self.name)

    def close(self):
        if self._f is not None:
            f, self._f = self._f, None
            super().close()
            _check(_lib.cvfs_file_close(f), self.name)
        else:
            super().close()


def _open(vfs, path, mode, buffering, encoding, errors, newline, perm):
    chars = set(mode)
    if not chars <= set("rwaxb+t") or len(chars) != len(mode) or len(chars & set("rwax")) != 1:
        raise ValueError(f"invalid mode: {mode!r}")
    if "b" in chars and "t" in chars:
        raise ValueError("can't have text and binary mode at once")
    plus = "+" in chars
    if "r" in chars:
        flags = os.O_RDWR if plus else os.O_RDONLY
    elif "w" in chars:
        flags = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_TRUNC
    elif "a" in chars:
        flags = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_APPEND
    else:
        flags = (os.O_RDWR if plus else os.O_WRONLY) | os.O_CREAT | os.O_EXCL
    if vfs.is_dir(path) and flags & os.O_ACCMODE == os.O_RDONLY:
        raise _err(-_errno.EISDIR, path)
    raw = VFSFile(vfs, path, flags, perm)
    if "a" in chars:
        raw.seek(0, io.SEEK_END)
    binary = "b" in chars
    if buffering == 0:
        if not binary:
            raw.close()
            raise ValueError("can't have unbuffered text I/O")
        return raw
    size = io.DEFAULT_BUFFER_SIZE if buffering in (-1, 1) else buffering
    if plus:
        buffered = io.BufferedRandom(raw, size)
    elif "r" in chars:
        buffered = io.BufferedReader(raw, size)
    else:
        buffered = io.BufferedWriter(raw, size)
    if binary:
        return buffered
    text = io.TextIOWrapper(buffered, encoding or "utf-8", errors, newline,
                            line_buffering=buffering == 1)
    text.mode = mode
    return text


# ---- mounting ----

class MountAdapter:
    """A mount of a VirtualFS at a directory.

    mount_blocking() serves in the calling thread until unmounted (or
    SIGINT/SIGTERM/SIGHUP); start()/stop() run it in the library's own
    thread; mount_async()/unmount_async() do the same from asyncio; and it
    is a context manager (sync and async)."""

    def __init__(self, vfs: VirtualFS, mountpoint: PathT, options: Optional[MountOptions] = None,
                 security: Optional[SecurityConfig] = None):
        self.vfs = vfs
        self.mountpoint = os.fsdecode(mountpoint)
        self.options = options or MountOptions()
        self.security = security if security is not None else vfs.security
        self._m = None
        self._readonly = False
        if security is not None and security is not vfs.security and not security.is_default():
            # The policy belongs to the filesystem (the library enforces it on
            # the API and the mount alike): it is set when the VirtualFS opens.
            raise ValueError("chuk_vfs: pass the SecurityConfig to VirtualFS(security=...)")
        self._readonly = bool(self.security is not None and self.security.read_only)

    @property
    def mounted(self) -> bool:
        return self._m is not None

    def _cfg(self):
        return self.options._config(readonly=self._readonly)

    def mount_blocking(self) -> None:
        cfg = self._cfg()
        msg = ctypes.c_void_p()
        rc = _lib.cvfs_mount_blocking(self.vfs._h(), _p(self.mountpoint), ctypes.byref(cfg),
                                      ctypes.byref(msg))
        text = _take_msg(msg)
        if rc < 0:
            raise OSError(-rc, text or os.strerror(-rc), self.mountpoint)

    def start(self) -> "MountAdapter":
        """Mounts and returns once the mount is live; served by a library thread."""
        if self._m is not None:
            raise RuntimeError(f"{self.mountpoint} is already mounted by this adapter")
        cfg = self._cfg()
        m = ctypes.c_void_p()
        msg = ctypes.c_void_p()
        rc = _lib.cvfs_mount_start(self.vfs._h(), _p(self.mountpoint), ctypes.byref(cfg),
                                   ctypes.byref(m), ctypes.byref(msg))
        text = _take_msg(msg)
        if rc < 0:
            raise OSError(-rc, text or os.strerror(-rc), self.mountpoint)
        self._m = m
        self.vfs._mounts.append(self)
        return self

    def stop(self) -> None:
        """Unmounts (lazily if busy) and waits for the serving thread."""
        if self._m is None:
            return
        m, self._m = self._m, None
        if self in self.vfs._mounts:
            self.vfs._mounts.remove(self)
        rc = _lib.cvfs_mount_stop(m)
        if rc < 0:
            raise OSError(-rc, os.strerror(-rc), self.mountpoint)

    async def mount_async(self) -> "MountAdapter":
        await asyncio.get_running_loop().run_in_executor(None, self.start)
        return self

    async def unmount_async(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    async def __aenter__(self):
        return await self.mount_async()

    async def __aexit__(self, *exc):
        await self.unmount_async()

    def __repr__(self):
        return f"<MountAdapter {self.mountpoint} {'mounted' if self.mounted else 'not mounted'}>"


def mount(vfs: VirtualFS, mountpoint: PathT, options: Optional[MountOptions] = None,
          security: Optional[SecurityConfig] = None) -> MountAdapter:
    """An adapter to mount vfs at mountpoint (nothing is mounted until
    start(), mount_blocking(), mount_async() or a with/async with block)."""
    return MountAdapter(vfs, mountpoint, options, security)

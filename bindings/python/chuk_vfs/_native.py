"""ctypes declarations for libchuk-vfs (include/cvfs/cvfs.h).

Only the standard library.  Every foreign call goes through ctypes.CDLL,
which releases the GIL for its duration: a filesystem mounted by this
process is served by the library's own threads, so a subprocess (or another
Python thread) can use the mount while a Python thread waits.
"""
import ctypes
import ctypes.util
import os
import platform
from pathlib import Path

__all__ = ["lib", "lib_path", "Stat", "MountConfig", "Timespec", "UTIME_NOW", "UTIME_OMIT",
           "CVFS_APPEND", "CVFS_EXCL", "LsFn"]

CVFS_APPEND = 1
CVFS_EXCL = 2
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


def _candidates():
    env = os.environ.get("CHUK_VFS_LIB")
    if env:
        yield env
        return
    here = Path(__file__).resolve().parent
    for p in sorted(here.glob("libchuk-vfs.so*")):
        yield str(p)
    root = here.parents[2]  # bindings/python/chuk_vfs -> the source tree
    for b in ("build", "builddir", "build-release"):
        p = root / b / "libchuk-vfs.so"
        if p.exists():
            yield str(p)
    found = ctypes.util.find_library("chuk-vfs")
    if found:
        yield found


def _load():
    errors = []
    for cand in _candidates():
        try:
            return ctypes.CDLL(cand), cand
        except OSError as e:
            errors.append(f"{cand}: {e}")
    hint = "; ".join(errors) if errors else "no candidate found"
    raise ImportError("chuk_vfs: cannot load libchuk-vfs.so (set CHUK_VFS_LIB to its path): "
                      + hint)


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_machine = platform.machine()
if _machine in ("x86_64", "AMD64"):
    class Stat(ctypes.Structure):
        _fields_ = [("st_dev", ctypes.c_uint64), ("st_ino", ctypes.c_uint64),
                    ("st_nlink", ctypes.c_uint64), ("st_mode", ctypes.c_uint32),
                    ("st_uid", ctypes.c_uint32), ("st_gid", ctypes.c_uint32),
                    ("_pad0", ctypes.c_int32), ("st_rdev", ctypes.c_uint64),
                    ("st_size", ctypes.c_int64), ("st_blksize", ctypes.c_int64),
                    ("st_blocks", ctypes.c_int64), ("st_atim", Timespec),
                    ("st_mtim", Timespec), ("st_ctim", Timespec),
                    ("_reserved", ctypes.c_int64 * 3)]
elif _machine in ("aarch64", "arm64", "riscv64", "loongarch64"):
    class Stat(ctypes.Structure):  # the generic 64-bit layout
        _fields_ = [("st_dev", ctypes.c_uint64), ("st_ino", ctypes.c_uint64),
                    ("st_mode", ctypes.c_uint32), ("st_nlink", ctypes.c_uint32),
                    ("st_uid", ctypes.c_uint32), ("st_gid", ctypes.c_uint32),
                    ("st_rdev", ctypes.c_uint64), ("_pad1", ctypes.c_uint64),
                    ("st_size", ctypes.c_int64), ("st_blksize", ctypes.c_int32),
                    ("_pad2", ctypes.c_int32), ("st_blocks", ctypes.c_int64),
                    ("st_atim", Timespec), ("st_mtim", Timespec), ("st_ctim", Timespec),
                    ("_unused", ctypes.c_int32 * 2)]
else:
    raise ImportError(f"chuk_vfs: struct stat layout for {_machine} is not known")


class MountConfig(ctypes.Structure):
    _fields_ = [("readonly", ctypes.c_int), ("allow_other", ctypes.c_int),
                ("debug", ctypes.c_int), ("cache_timeout", ctypes.c_double),
                ("threads", ctypes.c_int), ("fuse_opts", ctypes.c_char_p)]


LsFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(Stat))

lib, lib_path = _load()

_c = ctypes
_fs = _c.c_void_p
_s = _c.c_char_p
_sz = _c.c_size_t
_ssz = _c.c_ssize_t
_P = _c.POINTER


def _proto(name, res, *args):
    f = getattr(lib, name)
    f.restype = res
    f.argtypes = list(args)


_proto("cvfs_version", _s)
_proto("cvfs_free", None, _c.c_void_p)
_proto("cvfs_open", _c.c_int, _s, _P(_s), _P(_fs), _P(_c.c_void_p))
_proto("cvfs_close", None, _fs)
_proto("cvfs_mkdir", _c.c_int, _fs, _s, _c.c_uint, _c.c_int)
_proto("cvfs_write_file", _ssz, _fs, _s, _c.c_void_p, _sz, _c.c_uint, _c.c_int)
_proto("cvfs_read_file", _c.c_int, _fs, _s, _P(_c.c_void_p), _P(_sz))
_proto("cvfs_stat", _c.c_int, _fs, _s, _P(Stat))
_proto("cvfs_lstat", _c.c_int, _fs, _s, _P(Stat))
_proto("cvfs_ls", _c.c_int, _fs, _s, LsFn, _c.c_void_p)
_proto("cvfs_rename", _c.c_int, _fs, _s, _s, _c.c_uint)
_proto("cvfs_remove", _c.c_int, _fs, _s, _c.c_int)
_proto("cvfs_copy", _c.c_int, _fs, _s, _s, _c.c_int)
_proto("cvfs_symlink", _c.c_int, _fs, _s, _s)
_proto("cvfs_readlink", _ssz, _fs, _s, _c.c_char_p, _sz)
_proto("cvfs_link", _c.c_int, _fs, _s, _s)
_proto("cvfs_chmod", _c.c_int, _fs, _s, _c.c_uint)
_proto("cvfs_chown", _c.c_int, _fs, _s, _c.c_uint, _c.c_uint)
_proto("cvfs_utimens", _c.c_int, _fs, _s, _P(Timespec))
_proto("cvfs_truncate", _c.c_int, _fs, _s, _c.c_uint64)
_proto("cvfs_getxattr", _ssz, _fs, _s, _s, _c.c_void_p, _sz)
_proto("cvfs_setxattr", _c.c_int, _fs, _s, _s, _c.c_void_p, _sz, _c.c_int)
_proto("cvfs_listxattr", _ssz, _fs, _s, _c.c_char_p, _sz)
_proto("cvfs_removexattr", _c.c_int, _fs, _s, _s)
_proto("cvfs_file_open", _c.c_int, _fs, _s, _c.c_int, _c.c_uint, _P(_c.c_void_p))
_proto("cvfs_file_read", _ssz, _c.c_void_p, _c.c_void_p, _sz)
_proto("cvfs_file_write", _ssz, _c.c_void_p, _c.c_void_p, _sz)
_proto("cvfs_file_pread", _ssz, _c.c_void_p, _c.c_void_p, _sz, _c.c_uint64)
_proto("cvfs_file_pwrite", _ssz, _c.c_void_p, _c.c_void_p, _sz, _c.c_uint64)
_proto("cvfs_file_seek", _c.c_int64, _c.c_void_p, _c.c_int64, _c.c_int)
_proto("cvfs_file_sync", _c.c_int, _c.c_void_p)
_proto("cvfs_file_close", _c.c_int, _c.c_void_p)
_proto("cvfs_mount_blocking", _c.c_int, _fs, _s, _P(MountConfig), _P(_c.c_void_p))
_proto("cvfs_mount_start", _c.c_int, _fs, _s, _P(MountConfig), _P(_c.c_void_p),
       _P(_c.c_void_p))
_proto("cvfs_mount_stop", _c.c_int, _c.c_void_p)

import os
import sys

import pytest

sys.dont_write_bytecode = True
import chuk_vfs  # noqa: E402


@pytest.fixture
def vfs():
    v = chuk_vfs.VirtualFS("memory")
    yield v
    v.close()


@pytest.fixture
def mnt(tmp_path):
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        pytest.skip("/dev/fuse is not usable")
    d = tmp_path / "mnt"
    d.mkdir()
    return str(d)


def sqlite_vfs(db):
    try:
        return chuk_vfs.VirtualFS("sqlite", db_path=str(db))
    except OSError as e:
        if "not built" in str(e):
            pytest.skip("the sqlite store is not built in")
        raise

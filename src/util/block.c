#include "util/block.h"

_Thread_local struct cvfs_block_hook cvfs_tl_block;

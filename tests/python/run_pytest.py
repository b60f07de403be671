"""Runs the Python binding's pytest suite for `meson test`.

Exit status: pytest's, except that "no tests collected" (5) and a missing
pytest are failures too, so the suite can never pass by not running."""
import os
import sys

try:
    import pytest
except ImportError:
    print(f"run_pytest: pytest is not installed for {sys.executable} "
          "(apt-get install python3-pytest)", file=sys.stderr)
    sys.exit(1)

here = os.path.dirname(os.path.abspath(__file__))
args = ["-p", "no:cacheprovider", "-v", "-rs", here] + sys.argv[1:]
rc = int(pytest.main(args))
if rc == 5:
    print("run_pytest: no tests were collected", file=sys.stderr)
    rc = 1
sys.exit(rc)

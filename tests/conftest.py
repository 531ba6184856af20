import atexit
import os
import shutil
import tempfile

import pytest
import torch

# Built-in datasets cache into a fresh folder per test process, never the user's cache.
os.environ["NDDR_CACHE"] = tempfile.mkdtemp(prefix="nddr-test-cache-")
atexit.register(shutil.rmtree, os.environ["NDDR_CACHE"], ignore_errors=True)

# One intra-op thread per test process: the suite runs as parallel processes (pytest -n).
torch.set_num_threads(int(os.environ.get("NDDR_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)

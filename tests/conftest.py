import os
import sys
from pathlib import Path

# Before torch loads OpenMP: spinning idle threads slow parallel test workers 2-20x on 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # notebook_checks and helper scripts

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL_RAW = SHARED / "data" / "real_raw"
REAL_VIDEO = SHARED / "data" / "real_video"
OFFICIAL = SHARED / "official"


def shared_file(path: Path) -> Path:
    """``path`` under ../shared, or skip the test where it is absent; under ``CI=true`` (CI
    always has ../shared) a missing file fails the test instead of skipping it."""
    path = Path(path)
    if not path.exists():
        message = f"{path} is not present (../shared sample data or official release files)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (none visible)")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)

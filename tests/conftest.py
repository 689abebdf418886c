"""The framework's own tests: what they run of the guides runs on the topology's first build.

The guide runs they start (pytest in a subprocess, by test id) inherit this; the DPDK
matrix's own self-test names its builds with --dpdk-build, which overrides it.
"""

import os

os.environ.setdefault("HOWTO_DPDK_BUILD", "installed")

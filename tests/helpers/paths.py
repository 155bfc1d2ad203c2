"""Where things are, for the tests in any folder."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout
CONF = ROOT / "conf"
BENCHMARKS = ROOT / "benchmarks"
APPS = ROOT / "tests" / "apps"  # a user's own applications and builders, outside the package
PROBE = APPS / "probe_app.py"

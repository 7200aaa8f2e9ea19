"""Stand-in for the get-pip.py that ansible-test downloads from a host this network cannot reach.

ansible-test runs it as `python get_pip_X.py <pip install arguments>` inside an empty virtualenv. This version
bootstraps pip from the wheel CPython ships (ensurepip, no download), then runs `pip install` with the same
arguments against the configured package index, which is exactly what get-pip.py does.
"""

import ensurepip
import os
import subprocess
import sys

# get-pip.py's own flags: pip would reject them, and the venv needs neither package anyway.
OWN_FLAGS = {"--no-setuptools", "--no-wheel"}

# ensurepip points PIP_CONFIG_FILE at /dev/null in this process; the install must see the machine's pip config.
env = dict(os.environ)
ensurepip.bootstrap(upgrade=True, default_pip=True)
args = [a for a in sys.argv[1:] if a not in OWN_FLAGS]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args], env=env))

"""The frozen agent's entry point: ``secretsd agent`` and nothing else.

Going through ``secretsd.agent.cli`` rather than ``secretsd.cli`` lets PyInstaller's import
analysis stop at the agent: the server, rotation and store modules stay out of the layer.
"""

import sys

from secretsd.agent.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

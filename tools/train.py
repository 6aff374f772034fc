"""Thin wrapper in the OpenMMLab habit: same as `perception train ...`."""
import sys

from perception.commands import all_commands

if __name__ == '__main__':
    sys.exit(all_commands()['train'].main(sys.argv[1:]))

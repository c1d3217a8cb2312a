"""The ``tally`` command: Django management commands under friendlier, hyphenated names.

``tally generate-demo …`` is ``python manage.py generate_demo …``. A malformed setting stops
start-up with one line naming the variable instead of a traceback.
"""

from __future__ import annotations

import os
import sys

from tally.env import ConfigError


def _command_name(name: str) -> str:
    # MetricFlow-style hyphenated names map onto Django's module names.
    return name.replace("-", "_") if not name.startswith("-") else name


# Options whose values may start with "-" (descending order, as in MetricFlow's --order-by);
# argparse would otherwise read "-revenue" as an unknown option.
DASH_VALUE_OPTIONS = ("--order-by", "--order")


def _attach_dash_values(args: list[str]) -> list[str]:
    out: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in DASH_VALUE_OPTIONS and index + 1 < len(args) and args[index + 1].startswith("-"):
            out.append(f"{arg}={args[index + 1]}")
            index += 2
            continue
        out.append(arg)
        index += 1
    return out


def main(argv: list[str] | None = None, prog: str = "tally") -> int:
    """Runs one command and returns its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tally.settings")
    if args and _command_name(args[0]) == "demo":
        # `tally demo` is demo mode: it may run on the development SECRET_KEY and PII salt
        # (tally/env.py demo_mode); set before the settings load.
        os.environ.setdefault("TALLY_DEMO", "1")
    try:
        import django

        django.setup()
    except ConfigError as exc:
        print(f"{prog}: configuration error: {exc}", file=sys.stderr)
        return 2
    from django.core.management import execute_from_command_line

    if args:
        args[0] = _command_name(args[0])
    args = _attach_dash_values(args)
    try:
        execute_from_command_line([prog, *args])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

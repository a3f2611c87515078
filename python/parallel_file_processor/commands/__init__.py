"""Subcommands of ``pfp``; each module provides ``add_parser(subparsers)``."""

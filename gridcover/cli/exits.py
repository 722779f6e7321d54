"""The exit statuses of the ``gridcover`` command, shared by its subcommands."""

#: An error the user can fix: one line on stderr.
EXIT_ERROR = 2
#: An unexpected error (a bug): one line on stderr asking for a report.
EXIT_INTERNAL = 1
#: A change refused because another change of the same community came first (``redraw apply``/``restore``).
EXIT_CONFLICT = 3
#: Stopped with Ctrl+C.
EXIT_INTERRUPTED = 130

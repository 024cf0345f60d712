# host_server.errors: errors that end a command with one clear line (what is wrong and
# what to do), never a traceback. The CLI catches UserError at its single entry point.


class UserError(Exception):
    """A problem the user can fix: bad flags, bad configuration, a missing file.
    str(e) is the whole message: what is wrong, then what to do."""

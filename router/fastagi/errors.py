"""What can go wrong on a FastAGI connection; every failure is an AGIProtocolError."""


class AGIProtocolError(Exception):
    """The peer did not speak FastAGI as Asterisk does, or went away."""


class AGIHeaderTimeout(AGIProtocolError):
    """The environment block did not arrive in time."""


class AGIHeaderIncomplete(AGIProtocolError):
    """The connection closed before the blank line ending the environment block."""


class AGIClosedUnused(AGIHeaderIncomplete):
    """The connection closed (or was reset) before its first byte: a load balancer's or
    monitor's TCP check, not a broken session."""


class AGIHeaderTooLarge(AGIProtocolError):
    """The environment block exceeded its byte limit."""


class AGIMalformedHeader(AGIProtocolError):
    """A header line is not `agi_name: value`."""


class AGIConnectionClosed(AGIProtocolError):
    """Asterisk closed the connection (or it broke) while a reply was due."""


class AGIReplyTimeout(AGIProtocolError):
    """No reply within the command's timeout; the session can no longer be trusted."""


class AGIMalformedReply(AGIProtocolError):
    """A reply line is not one Asterisk sends."""

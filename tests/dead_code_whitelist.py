"""What the dead-code check (tests/test_dead_code.py) must not report, each entry with why.

vulture reads the shipped code (router/, dialplan/, rating/, numbering/, console/, bench/)
without the tests, so a name only tests use counts as dead: wire it into a feature or delete
it. An entry belongs here only when something outside that code calls the name: asyncio, a
library, a template, the tests as clients of the test tools the project ships, or a caller
another open change adds.
"""

# ruff: noqa: B018
import logging

import aiosqlite

from console.sessions import SignedInOnly
from console.views.dashboard import NumberMoney
from console.views.money import PaymentForm
from router.ami.wire import AmiConnection
from router.fastagi.connection import AGIConnection
from router.fastagi.protocol import AGIReply, AGISession
from router.simulation import asterisk_agi, asterisk_ami

# The logging module reads these switches as it makes every record
# (router.monitoring.logs.skip_unwritten_record_fields sets them).
logging._srcfile
logging.logThreads
logging.logProcesses
logging.logMultiprocessing

# asyncio.Protocol callbacks: the event loop calls them.
AmiConnection.connection_made
AmiConnection.data_received
AmiConnection.connection_lost
AGIConnection.eof_received

# Starlette calls a middleware's dispatch.
SignedInOnly.dispatch

# The console's Jinja templates read these (console/templates/*.html).
NumberMoney.cap_calls
NumberMoney.monthly_cost_cap
NumberMoney.monthly_call_cap
NumberMoney.daily_cost_cap
NumberMoney.low_balance
NumberMoney.owed  # money.html and dashboard_summary.html mark the balance with it
PaymentForm.amount_error  # money.html shows it at the amount field
PaymentForm.ref_error  # money.html shows it at the receipt field

# sqlite3/aiosqlite read the row factory set on a connection.
aiosqlite.Connection.row_factory

# The FastAGI wire's own commands and replies, exercised by the protocol tests against the
# recorded Asterisk transcripts: VERBOSE as Asterisk answers it, the key that interrupted a
# prompt. The tests: tests/router/fastagi/test_agi.py.
AGISession.verbose
AGIReply.digit

# The simulators are test tools shipped with the router (callgen and demo use them too);
# the tests drive these parts of them: caller hang-ups at each step, what a call left
# behind, hostile clients, and the recorded AMI sessions.
asterisk_agi.CallerHangup.after_env
asterisk_agi.CallerHangup.at_prompt
asterisk_agi.CallerHangup.after_keying_in
asterisk_agi.CallerHangup.during_playback
asterisk_agi.CallerHangup.during_sound
asterisk_agi.CallerHangup.while_waiting
asterisk_agi.CallerHangup.while_idle
asterisk_agi.CallResult.early_media
asterisk_agi.CallResult.hung_up_by
asterisk_agi.CallResult.hangup_lines
asterisk_agi.CallResult.virtual_s
asterisk_agi.HostileOutcome.server_closed
asterisk_agi.connect_and_close
asterisk_agi.send_header_without_end
asterisk_agi.send_oversized_header
asterisk_agi.send_binary_junk
asterisk_ami.RECORDINGS
# ... and the calls Asterisk keeps while a router is killed and restarted: a call's inbound
# channel, the Cdr records cdr.conf batch mode posts late, the CoreShowChannels asked
# (tests/router/ami/test_adoption.py).
asterisk_ami.AmiSimulator.channel_up
asterisk_ami.AmiSimulator.answer_caller  # a call the router answered for a prompt
asterisk_ami.AmiSimulator.flush_cdrs
asterisk_ami.AmiSimulator.channel_lists
asterisk_ami.AmiSimulator.variables_read  # the Getvar of an answer stamp asked

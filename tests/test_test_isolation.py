"""The suite's own hermeticity (tests/conftest.py): what one test changes in its process does
not reach the next test, whichever worker runs them in whichever order (pytest-xdist)."""

from __future__ import annotations

import signal


def test_a_test_may_leave_the_signals_ignored() -> None:
    # As a served flow run does on its way out (its process ends with the run).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def test_the_next_test_starts_with_pythons_own_signal_handlers() -> None:
    # Run after the one above (file order). A flow test that found SIGINT ignored never saw
    # its Ctrl-C (`test_a_signal_lets_the_work_in_hand_finish…`): left so by an earlier test
    # in the same xdist worker, or inherited by a suite started in the background (`cmd &`).
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

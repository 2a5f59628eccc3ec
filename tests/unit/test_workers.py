"""Forked workers report their messages and result, and their failures by name."""

import os
import signal
import time

import pytest

from pipesync.errors import SourceError
from pipesync.workers import Worker, WorkerError, can_fork

pytestmark = pytest.mark.skipif(not can_fork(), reason="workers need fork")


def test_messages_then_the_result_come_back():
    def count(send):
        for i in range(3):
            send(i)
        return {"pid": os.getpid()}

    got: list[int] = []
    result = Worker("counter", count).finish(got.append)
    assert got == [0, 1, 2]
    assert result["pid"] != os.getpid()


def test_messages_can_be_taken_while_the_worker_runs():
    def talk(send):
        send("hello")
        time.sleep(0.5)
        return "done"

    worker = Worker("talker", talk)
    got: list[str] = []
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        worker.received(got.append)
    assert got == ["hello"]
    assert worker.finish(got.append) == "done"
    assert got == ["hello"]


def test_a_user_facing_error_keeps_its_message_and_names_the_worker():
    def fail(send):
        raise SourceError("crm.csv: cannot read the file (Permission denied)")

    with pytest.raises(WorkerError, match=r"^crm part 2: crm.csv: cannot read the file \(Permission denied\)$"):
        Worker("crm part 2", fail).finish(lambda m: None)


def test_a_worker_that_dies_is_reported_not_waited_for():
    def die(send):
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(WorkerError, match="killed by signal 9"):
        Worker("doomed", die).finish(lambda m: None)


def test_stop_ends_a_worker_mid_run():
    worker = Worker("sleeper", lambda send: time.sleep(60))
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 10

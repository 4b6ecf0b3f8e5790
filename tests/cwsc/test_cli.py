"""The command line: usage mistakes are bad_input events."""

from backend_testing import last_event, run_backend


def test_usage_errors_are_bad_input_events(tmp_path):
    code, events, _ = run_backend("mask", "--labels", "x.tif")
    assert code == 2 and last_event(events, "error")["kind"] == "bad_input"

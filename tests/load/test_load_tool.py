"""The load tool end to end, kept tiny: every scenario against a real server, figures written as JSON."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.load.run import main


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_every_scenario_runs_and_reports(tiny_bundle, tmp_path):
    out = tmp_path / "load.json"
    code = main([
        "--bundle", str(tiny_bundle), "--units", "3", "--seconds", "20", "--clients", "2", "--items", "3",
        "--pool", "4", "--burst-items", "5", "--burst-max-items", "2", "--json", str(out),
    ])
    assert code == 0
    rows = {row["scenario"]: row for row in json.loads(out.read_text())["results"]}
    assert set(rows) == {"cached", "uncached", "burst"}
    for row in rows.values():
        assert row["errors"] == {} and row["ok_items"] == row["items"] > 0
        assert row["rss_mb"]["peak"] > 50  # the server process tree was sampled
    assert rows["cached"]["cached_items"] == rows["cached"]["items"] and rows["cached"]["image_fetches"] == 0
    assert rows["uncached"]["cached_items"] == 0 and rows["uncached"]["image_fetches"] == rows["uncached"]["items"]
    assert rows["burst"]["requests"] == 3 * rows["burst"]["units"]  # 5 items as 2 + 2 + 1
    assert rows["uncached"]["server"]["model_calls"] >= 1


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000", "http://example.com"])
def test_refuses_targets_off_this_machine(url):
    with pytest.raises(SystemExit):
        main(["--url", url])
